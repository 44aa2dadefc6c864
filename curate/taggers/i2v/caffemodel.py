"""Read (and, for tests, write) Caffe `.caffemodel` files without caffe, chainer or protoc.

A caffemodel is one protobuf `NetParameter`. We only need a few fields of it, so
this is a tiny wire-format reader over a memory map: nested messages are walked
by offset, and a blob's float array is copied straight out of the map, so the
180 MB i2v file is never decoded into Python objects. Field numbers are those of
BVLC caffe's `caffe.proto`:

    NetParameter:     name=1, layers=2 (V1LayerParameter, legacy), layer=100 (LayerParameter)
    LayerParameter:   name=1, type=2 (string), blobs=7, convolution_param=106, pooling_param=121
    V1LayerParameter: name=4, type=5 (enum), blobs=6, convolution_param=10, pooling_param=19
    BlobProto:        num=1, channels=2, height=3, width=4, data=5 (packed float), shape=7, double_data=8
    BlobShape:        dim=1 (packed int64)
    ConvolutionParameter: num_output=1, bias_term=2, pad=3, kernel_size=4, stride=6,
                          pad_h=9, pad_w=10, kernel_h=11, kernel_w=12, stride_h=13, stride_w=14
    PoolingParameter: pool=1 (MAX=0, AVE=1), kernel_size=2, stride=3, pad=4,
                      kernel_h=5, kernel_w=6, stride_h=7, stride_w=8, global_pooling=12
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# V1LayerParameter.LayerType values we meet, by their modern names.
V1_TYPES = {4: "Convolution", 5: "Data", 6: "Dropout", 8: "Flatten", 14: "InnerProduct", 15: "LRN",
            17: "Pooling", 18: "ReLU", 19: "Sigmoid", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split",
            23: "TanH", 25: "Eltwise", 33: "Slice", 3: "Concat", 27: "SigmoidCrossEntropyLoss"}
V1_CODES = {v: k for k, v in V1_TYPES.items()}
POOL_NAMES = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}


class CaffeModelError(Exception):
    """The file is not a caffemodel we can read."""


@dataclass
class Layer:
    name: str
    type: str
    blobs: list[np.ndarray] = field(default_factory=list)
    params: dict = field(default_factory=dict)   # convolution / pooling settings, caffe's defaults filled in


# -- wire format --------------------------------------------------------------

def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CaffeModelError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffeModelError("varint too long")


def _fields(buf, start: int, end: int):
    """Yield (field number, wire type, value) over buf[start:end]; length-delimited values
    come as (start, end) offsets so nothing is copied."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = (pos, pos + n)
            pos += n
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise CaffeModelError(f"unsupported protobuf wire type {wire} at byte {pos}")
        if pos > end or number == 0:
            raise CaffeModelError(f"corrupt protobuf field at byte {pos}")
        yield number, wire, value


def _packed_varints(buf, span) -> list[int]:
    out, pos = [], span[0]
    while pos < span[1]:
        v, pos = _varint(buf, pos)
        out.append(v)
    return out


def _ints(buf, wire, value) -> list[int]:
    """A repeated integer field: packed (wire 2) or one value (wire 0)."""
    return _packed_varints(buf, value) if wire == 2 else [value]


def _read_blob(buf, start: int, end: int) -> np.ndarray:
    legacy = {1: 0, 2: 0, 3: 0, 4: 0}
    shape: list[int] | None = None
    data: list[np.ndarray] = []
    for number, wire, value in _fields(buf, start, end):
        if number in legacy and wire == 0:
            legacy[number] = value
        elif number == 7 and wire == 2:
            shape = []
            for n2, w2, v2 in _fields(buf, *value):
                if n2 == 1:
                    shape += _ints(buf, w2, v2)
        elif number == 5:
            if wire == 2:
                data.append(np.frombuffer(buf[value[0]:value[1]], dtype="<f4"))
            elif wire == 5:
                data.append(np.frombuffer(value, dtype="<f4"))
        elif number == 8:
            if wire == 2:
                data.append(np.frombuffer(buf[value[0]:value[1]], dtype="<f8").astype(np.float32))
            elif wire == 1:
                data.append(np.frombuffer(value, dtype="<f8").astype(np.float32))
    if shape is None:
        shape = [legacy[1], legacy[2], legacy[3], legacy[4]]
    arr = np.concatenate(data) if data else np.zeros(0, np.float32)
    if int(np.prod(shape)) != arr.size:
        raise CaffeModelError(f"blob of shape {shape} holds {arr.size} values")
    return arr.reshape(shape).astype(np.float32, copy=True)


def _conv_params(buf, span) -> dict:
    p = {"num_output": 0, "bias_term": True, "pad": [0], "kernel_size": [], "stride": [1]}
    for number, wire, value in _fields(buf, *span):
        if number == 1:
            p["num_output"] = value
        elif number == 2:
            p["bias_term"] = bool(value)
        elif number in (3, 4, 6):
            name = {3: "pad", 4: "kernel_size", 6: "stride"}[number]
            p[name] = (p[name] if p.get("_set_" + name) else []) + _ints(buf, wire, value)
            p["_set_" + name] = True
        elif number in (9, 10, 11, 12, 13, 14):
            p[{9: "pad_h", 10: "pad_w", 11: "kernel_h", 12: "kernel_w", 13: "stride_h", 14: "stride_w"}[number]] = value
    p = {k: v for k, v in p.items() if not k.startswith("_set_")}
    pick = lambda name, hw, default: [p.get(f"{name}_h", (p[name] or [default])[0]),  # noqa: E731
                                      p.get(f"{name}_w", (p[name] or [default])[-1])][hw]
    return {"num_output": p["num_output"], "bias_term": p["bias_term"],
            "kernel": (pick("kernel_size", 0, 0), pick("kernel_size", 1, 0)),
            "pad": (pick("pad", 0, 0), pick("pad", 1, 0)),
            "stride": (pick("stride", 0, 1), pick("stride", 1, 1))}


def _pool_params(buf, span) -> dict:
    p = {"pool": "MAX", "kernel": (0, 0), "stride": (1, 1), "pad": (0, 0), "global": False}
    raw: dict[int, int] = {}
    for number, wire, value in _fields(buf, *span):
        if wire == 0:
            raw[number] = value
    p["pool"] = POOL_NAMES.get(raw.get(1, 0), str(raw.get(1)))
    k, s, pad = raw.get(2, 0), raw.get(3, 1), raw.get(4, 0)
    p["kernel"] = (raw.get(5, k), raw.get(6, k))
    p["stride"] = (raw.get(7, s), raw.get(8, s))
    p["pad"] = (pad, pad)
    p["global"] = bool(raw.get(12, 0))
    return p


def _read_layer(buf, start: int, end: int, v1: bool) -> Layer:
    name_f, type_f, blobs_f, conv_f, pool_f = (4, 5, 6, 10, 19) if v1 else (1, 2, 7, 106, 121)
    name, type_, blobs, params = "", "", [], {}
    for number, wire, value in _fields(buf, start, end):
        if number == name_f and wire == 2:
            name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == type_f:
            type_ = V1_TYPES.get(value, f"V1:{value}") if v1 and wire == 0 else \
                bytes(buf[value[0]:value[1]]).decode("utf-8", "replace") if wire == 2 else str(value)
        elif number == blobs_f and wire == 2:
            blobs.append(_read_blob(buf, *value))
        elif number == conv_f and wire == 2:
            params = _conv_params(buf, value)
        elif number == pool_f and wire == 2:
            params = _pool_params(buf, value)
    if type_ == "Convolution" and not params:
        params = _conv_params(buf, (0, 0))
    if type_ == "Pooling" and not params:
        params = _pool_params(buf, (0, 0))
    return Layer(name, type_, blobs, params)


def read_caffemodel(path: str | os.PathLike) -> list[Layer]:
    """Every layer of the caffemodel at `path`, in file order (the order caffe runs them)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise CaffeModelError(f"{path} is empty")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                layers = [_read_layer(buf, *value, v1=(number == 2))
                          for number, wire, value in _fields(buf, 0, len(buf)) if number in (2, 100) and wire == 2]
    except CaffeModelError as e:
        raise CaffeModelError(f"{path} is not a readable caffemodel: {e}") from None
    except OSError as e:
        raise CaffeModelError(f"cannot read {path}: {e.strerror or e}") from None
    if not layers:
        raise CaffeModelError(f"{path} is not a caffemodel: it holds no layers")
    return layers


# -- writing (tests, benchmarks, parity checks) ---------------------------------

def _key(number: int, wire: int) -> bytes:
    return _enc_varint(number << 3 | wire)


def _enc_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _enc_varint(len(payload)) + payload


def _int_field(number: int, v: int) -> bytes:
    return _key(number, 0) + _enc_varint(v)


def _blob_bytes(arr: np.ndarray, legacy_shape: bool) -> bytes:
    arr = np.asarray(arr, dtype="<f4")
    if legacy_shape:
        dims = [1] * (4 - arr.ndim) + list(arr.shape)
        head = b"".join(_int_field(n, d) for n, d in zip((1, 2, 3, 4), dims))
    else:
        head = _len_field(7, _len_field(1, b"".join(_enc_varint(d) for d in arr.shape)))
    return head + _len_field(5, arr.tobytes())


def write_caffemodel(path: str | os.PathLike, layers: list[Layer], v1: bool = False, name: str = "net") -> None:
    """Write `layers` as a caffemodel: modern `layer` fields, or with `v1` the legacy
    `layers` fields with num/channels/height/width blob shapes (as 2015 models have).
    Layers are streamed to the file one by one. Each layer is given bottom/top names
    chaining it to the previous one, so caffe-based readers can run the file."""
    with open(path, "wb") as f:
        f.write(_len_field(1, name.encode()))
        if v1:  # V1 nets declare their input in NetParameter.input / input_dim
            f.write(_len_field(3, b"data") + b"".join(_int_field(4, d) for d in (1, 3, 224, 224)))
        else:
            shape = _len_field(1, b"".join(_enc_varint(d) for d in (1, 3, 224, 224)))
            f.write(_len_field(100, _len_field(1, b"data") + _len_field(2, b"Input") + _len_field(4, b"data")
                               + _len_field(143, _len_field(1, shape))))
        bottom = "data"
        for layer in layers:
            # ReLU and Dropout work in place, as in caffe's own prototxts.
            top = bottom if layer.type in ("ReLU", "Dropout") else layer.name
            f.write(_len_field(2 if v1 else 100, _layer_bytes(layer, bottom, top, v1)))
            bottom = top


def _layer_bytes(layer: Layer, bottom: str, top: str, v1: bool) -> bytes:
    name_f, type_f, blobs_f, conv_f, pool_f, bottom_f, top_f = \
        (4, 5, 6, 10, 19, 2, 3) if v1 else (1, 2, 7, 106, 121, 3, 4)
    out = _len_field(name_f, layer.name.encode())
    out += _int_field(type_f, V1_CODES[layer.type]) if v1 else _len_field(type_f, layer.type.encode())
    out += _len_field(bottom_f, bottom.encode()) + _len_field(top_f, top.encode())
    for blob in layer.blobs:
        out += _len_field(blobs_f, _blob_bytes(blob, legacy_shape=v1))
    p = layer.params
    if layer.type == "Convolution":
        body = (_int_field(1, p["num_output"]) + _int_field(3, p["pad"][0]) + _int_field(4, p["kernel"][0])
                + _int_field(6, p["stride"][0]))
        out += _len_field(conv_f, body)
    elif layer.type == "Pooling":
        body = (_int_field(1, {"MAX": 0, "AVE": 1}[p["pool"]]) + _int_field(2, p["kernel"][0])
                + _int_field(3, p["stride"][0]))
        out += _len_field(pool_f, body)
    return out



# The layer plan of illust2vec_tag_ver200 (chainer_i2v.py + the release's prototxt):
# (stage, convolutions in it); a 2x2/2 max-pool follows stages 1-5, none follows 6.
I2V_STAGES = [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 4)]
I2V_WIDTHS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512, 6: 1024}


def i2v_layers(n_outputs: int = 1539, widths: dict[int, int] | None = None, seed: int = 0) -> list[Layer]:
    """An i2v-shaped layer list with random weights (He-initialised; conv1_1 scaled down
    by 64 because its input is on the 0-255 scale, so the outputs stay off 0 and 1).

    With the default widths it has the true shapes of the official model (for
    benchmarks); tests pass tiny widths so the same format costs kilobytes."""
    widths = widths or I2V_WIDTHS
    rng = np.random.default_rng(seed)
    layers, cin = [], 3
    for stage, n_convs in I2V_STAGES:
        for i in range(1, n_convs + 1):
            name = f"conv{stage}_{i}"
            out = n_outputs if name == "conv6_4" else widths[stage]
            std = np.sqrt(2.0 / (cin * 9)) / (64 if name == "conv1_1" else 1)
            w = (rng.standard_normal((out, cin, 3, 3)) * std).astype(np.float32)
            b = (rng.standard_normal(out) * 0.1).astype(np.float32)
            layers.append(Layer(name, "Convolution", [w, b],
                                {"num_output": out, "kernel": (3, 3), "pad": (1, 1), "stride": (1, 1)}))
            if name != "conv6_4":
                layers.append(Layer(f"relu{stage}_{i}", "ReLU"))
                if stage == 6:
                    layers.append(Layer(f"drop{stage}_{i}", "Dropout"))
            cin = out
        if stage < 6:
            layers.append(Layer(f"pool{stage}", "Pooling", [], {"pool": "MAX", "kernel": (2, 2), "stride": (2, 2)}))
    return layers
