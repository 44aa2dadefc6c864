"""The SQLite catalog: schema, migrations and every query of the project (persistence only).

The house's ground floor: db < curate < train < label_app; nothing here imports the floors above.
Queries are methods of `Catalog`, grouped by table family in mixins, one module each:
faces.py (sources, faces, the crop pipeline's bookkeeping), vocabulary.py (tag groups and tags),
labels.py (label events, current labels, sources, history), splits.py, derived.py (line art),
tagging.py (tagger bookkeeping, distributions), labelling.py (the app's queue, progress, face
status changes), kept.py (label arrays the queues read, kept in step with new events), training.py; catalog.py combines them with the connection, transactions and
migrations (schema.py); base.py holds the error and constants they share.
"""

from db.base import DEFAULT_DB, SPLITS, CatalogError, explain
from db.catalog import Catalog
from db.splits import split_hash

__all__ = ["Catalog", "CatalogError", "DEFAULT_DB", "SPLITS", "explain", "split_hash"]
