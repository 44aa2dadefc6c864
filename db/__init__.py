"""The SQLite catalog: schema, migrations and every query of the project."""

from db.catalog import DEFAULT_DB, SPLITS, Catalog, CatalogError, explain, split_hash

__all__ = ["Catalog", "CatalogError", "DEFAULT_DB", "SPLITS", "explain", "split_hash"]
