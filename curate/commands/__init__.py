"""The `curate` commands, one module per family; each builds the library object and calls it.

catalog (split, stats, labels, vocab), export, crop (crop, import), sketch, tag (tag, i2v
download), colors (calibrate-colors), quality (agree, suspects), consensus (consensus,
annotators), show. Each registers its
commands on `curate.app.app` when imported; curate/cli.py says which module holds which command,
so a run imports only the one it needs.
"""
