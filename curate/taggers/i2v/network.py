"""illustration2vec's tag network as a PyTorch module, built from the caffemodel itself.

The official `illust2vec_tag_ver200.caffemodel` is a VGG-style stack of 3x3 conv + ReLU:
conv1_1 | pool1 | conv2_1 | pool2 | conv3_1-2 | pool3 | conv4_1-2 | pool4 | conv5_1-2 | pool5 |
conv6_1-3 | conv6_4 (1539 channels), then (chainer_i2v.py) a 7x7 average pool and a sigmoid.
The layer list, channel counts, padding and pooling are read from the file, so any
caffemodel of this family -- the real one, or a tiny one in tests -- loads the same way.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from curate.taggers.i2v.caffemodel import CaffeModelError, Layer, read_caffemodel
from curate.taggers.i2v.integrity import MODEL_FILE, IntegrityError, read_record, record_path, sha256_file, verify, write_record

TAG_FILES = ("tag_list.json", "tag_list.json.gz")
OUTPUT_LAYER = "conv6_4"   # chainer_i2v forwards to here, then pools and squashes
# Index ranges of i2v's tag list (base.py estimate_top_tags).
CATEGORIES = {"general": (0, 512), "character": (512, 1024), "copyright": (1024, 1536), "rating": (1536, 1539)}
SKIPPED_TYPES = {"Dropout", "Input", "Data", "Split", "Silence"}   # no-ops at inference


class I2VError(Exception):
    """The model files are missing, corrupt or of another network; the message names the file."""


@dataclass
class I2VModel:
    net: "I2VNet"
    tags: list[str]
    version: str          # e.g. "illust2vec_tag_ver200": recorded so a re-run skips tagged faces
    path: Path

    def to(self, device) -> "I2VModel":
        self.net.to(device)
        return self


class I2VNet(nn.Module):
    """conv/relu/pool stack up to conv6_4, then 7x7 average pool and sigmoid."""

    def __init__(self, arch: list[dict]):
        super().__init__()
        self.arch = arch
        mods = OrderedDict()
        for op in arch:
            if op["type"] == "Convolution":
                mods[op["name"]] = nn.Conv2d(op["in"], op["out"], tuple(op["kernel"]), tuple(op["stride"]),
                                             tuple(op["pad"]), bias=op["bias"])
            elif op["type"] == "ReLU":
                mods[op["name"]] = nn.ReLU(inplace=True)
            elif op["type"] == "Pooling":
                # caffe rounds pooled sizes up; chainer's cover_all does too
                cls = nn.MaxPool2d if op["pool"] == "MAX" else nn.AvgPool2d
                mods[op["name"]] = cls(tuple(op["kernel"]), tuple(op["stride"]), tuple(op["pad"]), ceil_mode=True)
        self.body = nn.Sequential(mods)

    @property
    def n_outputs(self) -> int:
        return [op for op in self.arch if op["type"] == "Convolution"][-1]["out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) BGR mean-subtracted -> (N, n_tags) probabilities."""
        h = self.body(x)
        h = nn.functional.avg_pool2d(h, 7)
        return torch.sigmoid(h.flatten(1))


def architecture(layers: list[Layer], path: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The ops up to conv6_4 and their weights; I2VError when it is not i2v's kind of network."""
    arch, weights, channels = [], {}, 3
    names = [layer.name for layer in layers]
    if OUTPUT_LAYER not in names:
        convs = [n for n, l in zip(names, layers) if l.type == "Convolution"]
        raise I2VError(f"{path} is not an illustration2vec tag model: it has no layer {OUTPUT_LAYER!r} "
                       f"(its layers: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}; "
                       f"{len(convs)} convolutions)")
    for layer in layers:
        if layer.type in SKIPPED_TYPES:
            continue
        if layer.type == "Convolution":
            if not layer.blobs or layer.blobs[0].ndim != 4:
                raise I2VError(f"{path}: convolution {layer.name!r} has no 4-d weight blob")
            w = layer.blobs[0]
            out, cin, kh, kw = w.shape
            if cin != channels:
                raise I2VError(f"{path}: {layer.name!r} expects {cin} input channels but gets {channels} "
                               f"(grouped convolutions are not i2v)")
            p = layer.params
            bias = len(layer.blobs) > 1
            if bias and layer.blobs[1].size != out:
                raise I2VError(f"{path}: {layer.name!r} has {layer.blobs[1].size} biases for {out} outputs")
            arch.append({"type": "Convolution", "name": layer.name, "in": cin, "out": out, "kernel": [kh, kw],
                         "stride": list(p.get("stride", (1, 1))), "pad": list(p.get("pad", (0, 0))), "bias": bias})
            weights[f"body.{layer.name}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
            if bias:
                weights[f"body.{layer.name}.bias"] = torch.from_numpy(layer.blobs[1].reshape(out).copy())
            channels = out
        elif layer.type == "ReLU":
            arch.append({"type": "ReLU", "name": layer.name})
        elif layer.type == "Pooling":
            p = layer.params
            if p["pool"] not in ("MAX", "AVE") or p["global"]:
                raise I2VError(f"{path}: pooling {layer.name!r} ({p['pool']}) is not one i2v uses")
            arch.append({"type": "Pooling", "name": layer.name, "pool": p["pool"], "kernel": list(p["kernel"]),
                         "stride": list(p["stride"]), "pad": list(p["pad"])})
        else:
            raise I2VError(f"{path} is not an illustration2vec tag model: layer {layer.name!r} is a "
                           f"{layer.type} before {OUTPUT_LAYER}")
        if layer.name == OUTPUT_LAYER:
            if layer.type != "Convolution":
                raise I2VError(f"{path}: {OUTPUT_LAYER} is a {layer.type}, not a convolution")
            break
    # i2v runs conv6_4 without a ReLU; a file that puts one there is still read as i2v does.
    return arch, weights


def load_tags(path: Path) -> list[str]:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        tags = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, EOFError, UnicodeDecodeError) as e:
        raise I2VError(f"{path} is not a readable tag list (a JSON array of tag names): {e}") from None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise I2VError(f"{path} is not a tag list: expected a JSON array of strings")
    return tags


def find_files(model_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(caffemodel, tag list) inside `model_dir`, or I2VError saying which is missing."""
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise I2VError(f"model folder {model_dir} does not exist (run `curate i2v download --model-dir {model_dir}`)")
    model = model_dir / MODEL_FILE
    if not model.is_file():
        found = sorted(model_dir.glob("*.caffemodel"))
        if len(found) != 1:
            raise I2VError(f"{model} is missing (run `curate i2v download --model-dir {model_dir}`, "
                           f"or put the official files there by hand)")
        model = found[0]
    for name in TAG_FILES:
        if (model_dir / name).is_file():
            return model, model_dir / name
    raise I2VError(f"{model_dir / TAG_FILES[0]} is missing (neither tag_list.json nor tag_list.json.gz "
                   f"is in {model_dir})")


def _cache_path(model: Path) -> Path:
    return model.with_suffix(".safetensors")


def _cache_stamp(model: Path) -> str:
    st = model.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _load_cached(model: Path, model_sha256: str | None):
    """The converted weights, if the cache is of this caffemodel (its sha256 where one is
    recorded, else its size and time) and, where its own sha256 is recorded, intact."""
    cache = _cache_path(model)
    if not cache.is_file():
        return None
    try:
        if model_sha256 is not None and read_record(cache) != sha256_file(cache):
            return None
        from safetensors import safe_open
        with safe_open(str(cache), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("source") != _cache_stamp(model) or (
                    model_sha256 is not None and meta.get("source_sha256") != model_sha256):
                return None
            arch = json.loads(meta["arch"])
            weights = {k: f.get_tensor(k) for k in f.keys()}
        return arch, weights
    except Exception:  # a stale or broken cache is rebuilt, never trusted
        return None


def _save_cache(model: Path, arch: list[dict], weights: dict, model_sha256: str | None) -> None:
    from safetensors.torch import save_file
    cache = _cache_path(model)
    tmp = cache.with_suffix(".safetensors.part")
    meta = {"arch": json.dumps(arch), "source": _cache_stamp(model)}
    if model_sha256 is not None:
        meta["source_sha256"] = model_sha256
    try:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp), metadata=meta)
        os.replace(tmp, cache)
        write_record(cache, sha256_file(cache))
    except OSError:  # a read-only model folder: just convert again next time
        tmp.unlink(missing_ok=True)


def load_model(model_dir: str | os.PathLike | None = None, *, model: str | os.PathLike | None = None,
               tags: str | os.PathLike | None = None, cache: bool = True) -> I2VModel:
    """Load i2v from a folder holding the official files (or explicit file paths).

    The converted weights are cached as `<model>.safetensors` beside the caffemodel
    and reused while the caffemodel's size and mtime are unchanged. Where a sha256 is
    recorded beside the caffemodel (by `curate i2v download`, or put there by hand),
    every load checks the caffemodel against it, and the cache against its own record.
    """
    if model is None or tags is None:
        found_model, found_tags = find_files(model_dir)
        model, tags = model or found_model, tags or found_tags
    model, tags = Path(model), Path(tags)
    if not model.is_file():
        raise I2VError(f"{model} does not exist")
    if not tags.is_file():
        raise I2VError(f"{tags} does not exist")
    try:
        pinned = read_record(model)
        model_sha256 = None if pinned is None else verify(model, pinned, str(record_path(model)))
        verify(tags, read_record(tags), str(record_path(tags)))
    except IntegrityError as e:
        raise I2VError(str(e)) from None
    tag_list = load_tags(tags)
    loaded = _load_cached(model, model_sha256) if cache else None
    if loaded is None:
        try:
            layers = read_caffemodel(model)
        except CaffeModelError as e:
            raise I2VError(str(e)) from None
        arch, weights = architecture(layers, model)
        if cache:
            _save_cache(model, arch, weights, model_sha256)
    else:
        arch, weights = loaded
    net = I2VNet(arch)
    if net.n_outputs != len(tag_list):
        raise I2VError(f"{tags} lists {len(tag_list)} tags but {model} predicts {net.n_outputs}")
    net.load_state_dict(weights)
    net.eval()
    return I2VModel(net, tag_list, model.stem, model)
