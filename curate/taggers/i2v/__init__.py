"""illustration2vec (Saito & Matsui 2015) in PyTorch, loading the official caffemodel directly.

    from curate.taggers.i2v import load_model
    model = load_model("~/.cache/animeface-gan-study/i2v")      # folder with the official files
"""

from curate.taggers.i2v.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel  # noqa: F401
from curate.taggers.i2v.network import I2VError, I2VModel, I2VNet, load_model  # noqa: F401
