"""The one place that imports torchvision.

PyPI's torchvision 0.28 is a CUDA build; beside the CPU torch wheel its import fails
with "operator torchvision::nms does not exist", because its compiled ops library
does not load. Defining the two op schemas it registers fake kernels for lets the
pure-Python parts (models, transforms, utils) import. Done only when the plain
import fails, so a matching torchvision is left untouched. Its `io` decoders never
load here: decode images with PIL or OpenCV.
"""

from __future__ import annotations

import importlib
import sys


def import_torchvision():
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as e:
        if "torchvision::nms" not in str(e) and "torchvision::qnms" not in str(e):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    global _LIB  # keep the library alive: dropping it unregisters the ops
    _LIB = torch.library.Library("torchvision", "DEF")
    _LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    return importlib.import_module("torchvision")


_LIB = None
