"""The judge: a small attribute classifier trained on real faces, used to score generated ones.

One head per tag group (softmax for exclusive groups such as hair colour, sigmoid per
tag for independent ones), on a 4-stage CNN. Trained on one label source's train
split, model-selected on val, and its accuracy on the real test split is the
ceiling a conditional GAN can reach under this judge: a generator whose "red hair"
samples the judge calls red as often as it calls real red-haired faces red does as
well as can be measured. Its penultimate layer (`features`) is a feature space made
for these faces, for FID/KID/diversity where no Inception weights exist.

Saved as one file (`judges/<name>.pt`): options, vocabulary, weights, val and test
scores, so `train eval` needs nothing else.

The same classifier, trained by the same `fit`, is `curate tag --tagger judge`
(curate/taggers/judge.py): one model per cross-fitting fold, through `fit_judge`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from db import Catalog

from curate import safe_load
from curate.images import ImageError, open_crop

JUDGE_FORMAT = 1


class JudgeError(Exception):
    """A judge file that is missing or not a judge; or data a judge cannot be trained on."""


@dataclass
class JudgeOptions:
    source: str = "manual"     # label source to learn
    size: int = 32             # input resolution (generated images are resized to it)
    width: int = 16            # channels of the first conv stage (doubles each stage)
    feature_dim: int = 128     # penultimate layer = the judge's feature space
    epochs: int = 10
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    catalog: str = ""          # recorded for `train eval` defaults


# -- data -----------------------------------------------------------------------

@dataclass
class LabelledSet:
    """Real faces of one split as uint8 NCHW, with targets per head."""
    face_ids: list[int]
    images: torch.Tensor                                      # uint8 [N, 3, S, S]
    tags: list[dict] = field(default_factory=list)            # per face: {group: tag or [tags]}
    set_aside: list[tuple[int, str]] = field(default_factory=list)   # (face id, why): crops that do not decode


def decode_face(data: bytes, size: int) -> np.ndarray:
    """Crop bytes -> uint8 HxWx3 at `size` (Lanczos, as the GANs see their training faces);
    ImageError when the crop does not decode."""
    with open_crop(data) as img:
        img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)  # as train.data does for GAN inputs
    return np.asarray(img, dtype=np.uint8)


def decode_or_set_aside(catalog: Catalog, face_id: int, data: bytes, size: int,
                        set_aside: list[tuple[int, str]]) -> np.ndarray | None:
    """decode_face, or None for a crop that does not decode: that face is set aside as rejected
    with the reason (as `curate tag` does), so no later run stumbles on it, and added to `set_aside`."""
    try:
        return decode_face(data, size)
    except ImageError as e:
        catalog.set_face_status(face_id, "rejected", reason=str(e))
        set_aside.append((face_id, str(e)))
        return None


def load_labelled(catalog: Catalog, source: str, split: str | None, size: int,
                  common: tuple[str, ...] = ()) -> LabelledSet:
    """Every ok face of `split` that `source` labelled, with its labels as tag dicts."""
    labels = catalog.labelled_faces(source, split=split, common=common)
    groups = catalog.groups()
    tag_group = {t: g["name"] for g in groups for t in g["tags"]}
    ids, images, dicts, set_aside = [], [], [], []
    for face in catalog.iter_faces(status="ok", split=split):
        if face["id"] not in labels:
            continue
        image = decode_or_set_aside(catalog, face["id"], face["image"], size, set_aside)
        if image is None:
            continue
        d: dict = {}
        for key, (tag, value) in labels[face["id"]].items():
            if key == tag:   # an independent tag: present when its value reaches 0.5
                if value is None or value >= 0.5:
                    d.setdefault(tag_group[tag], []).append(tag)
                else:
                    d.setdefault(tag_group[tag], [])
            else:
                d[key] = tag
        ids.append(face["id"])
        images.append(image)
        dicts.append(d)
    arr = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return LabelledSet(ids, torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), dicts, set_aside)


def vocabulary(catalog: Catalog, train: LabelledSet) -> list[dict]:
    """The heads: each group with the tags the training labels use, in catalog order."""
    used: dict[str, set] = {}
    for d in train.tags:
        for group, value in d.items():
            used.setdefault(group, set()).update([value] if isinstance(value, str) else value)
    heads = []
    for g in catalog.groups():
        tags = [t for t in g["tags"] if t in used.get(g["name"], ())]
        if len(tags) >= (2 if g["exclusive"] else 1):
            heads.append({"name": g["name"], "exclusive": g["exclusive"], "tags": tags})
    return heads


def targets(heads: list[dict], dicts: list[dict]) -> list[torch.Tensor]:
    """Per head: exclusive -> class index (-1 = unlabelled / unknown tag); independent ->
    multi-hot with NaN where the group is unlabelled."""
    out = []
    for h in heads:
        if h["exclusive"]:
            pos = {t: i for i, t in enumerate(h["tags"])}
            out.append(torch.tensor([pos.get(d.get(h["name"]), -1) for d in dicts], dtype=torch.long))
        else:
            t = torch.full((len(dicts), len(h["tags"])), float("nan"))
            for i, d in enumerate(dicts):
                if h["name"] in d:
                    t[i] = torch.tensor([float(tag in d[h["name"]]) for tag in h["tags"]])
            out.append(t)
    return out


# -- network ----------------------------------------------------------------------

class JudgeNet(nn.Module):
    def __init__(self, size: int, width: int, feature_dim: int, head_sizes: list[int]):
        super().__init__()
        stages = max(1, int(math.log2(size)) - 2)       # down to 4x4
        layers, cin = [], 3
        for i in range(stages):
            cout = width * 2 ** i
            layers += [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                       nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                       nn.MaxPool2d(2)]
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(cin, feature_dim), nn.ReLU(True))
        self.drop = nn.Dropout(0.3)
        self.heads = nn.ModuleList(nn.Linear(feature_dim, k) for k in head_sizes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f = self.body(x)
        h = self.drop(f)
        return f, [head(h) for head in self.heads]


def to_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NCHW at any size -> float [-1, 1] at the judge's size."""
    x = images.float() / 127.5 - 1
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flips and 2-pixel shifts: cheap, label-preserving."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), mode="replicate")
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    return pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]


# -- the judge --------------------------------------------------------------------

class Judge:
    """A trained judge: `predict(images)` -> tag dicts, `features(images)` -> [N, feature_dim]."""

    def __init__(self, options: JudgeOptions, heads: list[dict], net: JudgeNet, scores: dict | None = None):
        self.options, self.heads, self.net, self.scores = options, heads, net.eval(), scores or {}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> "Judge":
        """The judge on `device` (`--device`); its features and predictions still come back on the CPU."""
        self.net.to(device)
        return self

    @torch.no_grad()
    def outputs(self, images: torch.Tensor, batch: int = 512) -> tuple[np.ndarray, list[np.ndarray]]:
        """(features, per-head probabilities) for uint8 NCHW images."""
        self.net.eval()
        feats, probs = [], [[] for _ in self.heads]
        for i in range(0, len(images), batch):
            f, logits = self.net(to_input(images[i:i + batch], self.options.size).to(self.device))
            feats.append(f.cpu())
            for k, (h, lg) in enumerate(zip(self.heads, logits)):
                probs[k].append((lg.softmax(1) if h["exclusive"] else lg.sigmoid()).cpu())
        if not feats:
            return np.zeros((0, self.options.feature_dim)), [np.zeros((0, len(h["tags"]))) for h in self.heads]
        return torch.cat(feats).double().numpy(), [torch.cat(p).numpy() for p in probs]

    def features(self, images: torch.Tensor) -> np.ndarray:
        return self.outputs(images)[0]

    def predict(self, images: torch.Tensor) -> list[dict]:
        _, probs = self.outputs(images)
        out: list[dict] = [{} for _ in range(len(images))]
        for h, p in zip(self.heads, probs):
            for d, row in zip(out, p):
                d[h["name"]] = h["tags"][int(row.argmax())] if h["exclusive"] else \
                    [t for t, v in zip(h["tags"], row) if v >= 0.5]
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        state = {k: v.cpu() for k, v in self.net.state_dict().items()}    # loads where there is no GPU
        torch.save({"format": JUDGE_FORMAT, "options": asdict(self.options), "heads": self.heads,
                    "state": state, "scores": self.scores}, tmp)
        tmp.replace(path)   # never a half-written judge under the real name
        return path


def build_net(options: JudgeOptions, heads: list[dict], seed: int | None = None) -> JudgeNet:
    """The network for `heads`; with `seed`, its initial weights are drawn from that seed."""
    if seed is not None:
        torch.manual_seed(seed)
    return JudgeNet(options.size, options.width, options.feature_dim, [len(h["tags"]) for h in heads])


def load_judge(path: str | Path) -> Judge:
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"no judge at {path} (train one with `train judge`)")
    try:
        blob = safe_load.load(path)      # tensors and plain values only: a judge from elsewhere runs nothing
    except safe_load.UnsafeFileError as e:
        raise JudgeError(str(e)) from e
    except Exception as e:
        raise JudgeError(f"{path} is not a judge file ({type(e).__name__}: {e})") from e
    if not isinstance(blob, dict) or blob.get("format") != JUDGE_FORMAT:
        raise JudgeError(f"{path} is not a judge file of this program")
    options = JudgeOptions(**blob["options"])
    net = build_net(options, blob["heads"])
    net.load_state_dict(blob["state"])
    return Judge(options, blob["heads"], net, blob.get("scores"))


# -- scoring ------------------------------------------------------------------------

def accuracy(heads: list[dict], predicted: list[dict], wanted: list[dict]) -> dict:
    """Per group: share of faces where the prediction has the wanted tag, overall and per wanted tag.

    Exclusive groups: top-1 tag equals the wanted one. Independent groups: per tag,
    present/absent agrees (only faces whose group is labelled). Groups a wanted dict
    leaves out, or tags the judge does not know, are not counted.
    """
    out = {}
    for h in heads:
        name, per_tag = h["name"], {}
        hits = total = 0
        for p, w in zip(predicted, wanted):
            if name not in w:
                continue
            if h["exclusive"]:
                if w[name] not in h["tags"]:
                    continue
                ok = int(p[name] == w[name])
                c = per_tag.setdefault(w[name], [0, 0])
                c[0] += ok
                c[1] += 1
                hits, total = hits + ok, total + 1
            else:
                for tag in h["tags"]:
                    ok = int((tag in p[name]) == (tag in w[name]))
                    c = per_tag.setdefault(tag, [0, 0])
                    c[0] += ok
                    c[1] += 1
                    hits, total = hits + ok, total + 1
        if total:
            out[name] = {"accuracy": hits / total, "n": total,
                         "per_tag": {t: {"accuracy": a / n, "n": n} for t, (a, n) in
                                     sorted(per_tag.items(), key=lambda kv: h["tags"].index(kv[0]))}}
    return out


# -- training -------------------------------------------------------------------------

def train_judge(catalog: Catalog, options: JudgeOptions, progress=None, log=print,
                device: str | torch.device = "cpu") -> Judge:
    """Train on `options.source`'s train split, keep the epoch best on val, score on test, on `device`.

    `progress(epoch, epochs, val_accuracy)` is called after each epoch (for a bar).
    """
    train = load_labelled(catalog, options.source, "train", options.size)
    if len(train.face_ids) < 2:
        raise JudgeError(f"label source {options.source!r} has {len(train.face_ids)} labelled train faces: "
                         f"too few to train a judge (run `curate split` and label more)")
    val = load_labelled(catalog, options.source, "val", options.size)
    test = load_labelled(catalog, options.source, "test", options.size)
    heads = vocabulary(catalog, train)
    if not heads:
        raise JudgeError(f"label source {options.source!r} uses no group with two or more tags: nothing to judge")
    judge = Judge(options, heads, build_net(options, heads, options.seed))
    best = [-1.0, None]
    started = time.time()

    def keep_best(epoch: int) -> None:
        ref = val if val.face_ids else train
        score = mean_accuracy(accuracy(heads, judge.predict(ref.images), ref.tags))
        if score >= best[0]:
            best[:] = score, {k: v.clone() for k, v in judge.net.state_dict().items()}
        if progress:
            progress(epoch + 1, options.epochs, score)

    fit(judge.net, heads, train.images, targets(heads, train.tags), options, keep_best, device=device)
    judge.net.load_state_dict(best[1])
    judge.scores = {"val": accuracy(heads, judge.predict(val.images), val.tags),
                    "test": accuracy(heads, judge.predict(test.images), test.tags),
                    "faces": {"train": len(train.face_ids), "val": len(val.face_ids), "test": len(test.face_ids)},
                    "seconds": round(time.time() - started, 1),
                    "set_aside": [[f, why] for f, why in train.set_aside + val.set_aside + test.set_aside]}
    return judge


def fit_judge(options: JudgeOptions, heads: list[dict], images: torch.Tensor, tags: list[dict],
              seed: int | None = None, on_epoch=None) -> Judge:
    """A judge trained on these faces and tag dicts for `options.epochs` (no model selection):
    what `curate tag --tagger judge` trains once per fold."""
    judge = Judge(options, heads, build_net(options, heads, options.seed if seed is None else seed))
    fit(judge.net, heads, images, targets(heads, tags), options, on_epoch, seed)
    return judge


def fit(net: JudgeNet, heads: list[dict], images: torch.Tensor, y: list[torch.Tensor], options: JudgeOptions,
        on_epoch=None, seed: int | None = None, device: str | torch.device = "cpu") -> None:
    """Train `net` on uint8 NCHW `images` with per-head targets `y` (see `targets`) on `device`:
    AdamW with a one-cycle schedule, flips and shifts (drawn on the CPU, so every device draws
    the same). `on_epoch(epoch)` runs after each epoch."""
    gen = torch.Generator().manual_seed(options.seed if seed is None else seed)
    net.to(device, memory_format=torch.channels_last)   # NHWC: ~1.2x faster on this project's CPU, as for the GANs
    opt = torch.optim.AdamW(net.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(images) / options.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, options.lr, total_steps=options.epochs * steps_per_epoch)
    for epoch in range(options.epochs):
        net.train()
        order = torch.randperm(len(images), generator=gen)
        for i in range(0, len(order), options.batch):
            idx = order[i:i + options.batch]
            if len(idx) < 2:    # batch norm needs two samples
                continue
            x = augment(to_input(images[idx], options.size), gen).to(device).contiguous(
                memory_format=torch.channels_last)
            _, logits = net(x)
            loss = head_loss(heads, logits, [t[idx].to(device) for t in y])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if on_epoch:
            on_epoch(epoch)


def head_loss(heads: list[dict], logits: list[torch.Tensor], y: list[torch.Tensor]) -> torch.Tensor:
    total = logits[0].new_zeros(())
    for h, lg, t in zip(heads, logits, y):
        if h["exclusive"]:
            if (t >= 0).any():
                total = total + F.cross_entropy(lg, t, ignore_index=-1)
        else:
            mask = ~t.isnan()
            if mask.any():
                total = total + F.binary_cross_entropy_with_logits(lg[mask], t[mask])
    return total


def mean_accuracy(scores: dict) -> float:
    return float(np.mean([s["accuracy"] for s in scores.values()])) if scores else 0.0

