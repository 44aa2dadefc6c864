"""The `curate` commands, one module per family; each builds the library object and calls it."""
