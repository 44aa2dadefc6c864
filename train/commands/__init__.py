"""The `train` commands, one module per family; each gathers options and calls one function."""
