"""`train eval` on a sketch run (`train pix2pix`): how faithful, real, tag-true and varied its
paintings are, on the real test split's sketches and on real hand-drawn ones.

Everything is drawn from fixed seeds, so two evaluations of one run agree:

- sketches: the line art of every test face the judge's source labelled, made from its crop
  with the run's own line-art parameters, exactly as the training sketches were made (stored
  by `curate sketch`, resized to the run's size);
- fidelity: the test sketches painted with each face's own tags, their line art against the
  sketch (train/sketch/metrics.py: Chamfer distance and edge F1, beside a floor, the real face's
  own line art with other parameters, and a ceiling, another real face; `position` = where the
  model lands from floor 0 to ceiling 1);
- tags: the same sketches painted with the tags of another test face (a shifted list, so a
  sketch never gets its own), `rounds` times with other shifts: judge accuracy on the asked
  tags, the figure `train compare` shows, beside the judge's real-test ceiling; and the judge
  accuracy with each face's own tags, which its sketch helps;
- realism: judge-space FID/KID of the own-tag paintings against the real test split, beside
  the real-vs-real floor, and their diversity, as `train eval` reports for every run;
- noise: each sketch painted with two noises: the mean distance between the two paintings
  (pixels RMS and judge features), beside the distance between two different real faces;
- colour hints (a run trained with `--hints`): each test sketch painted with HINT_POINTS colour
  patches sampled from its real face (train/sketch/hints.py, as in training) and without hints:
  the CIELAB error at and around the hinted places with against without; and painted with the
  hints and another face's tags, whose colours disagree: the error then, and whether the judge
  sees the hints' face's tags or the asked ones (hints should win): by the network alone, and as
  the painter paints for users, where the hints decide the tags they speak for
  (train/sketch/hint_tags.py), with how often the asked tags gave way and how often a face's own
  tags, which its hints agree with, were changed; and the same with the patches placed as a user
  places them for one tag group (where that group's tags change the painting most: mostly the hair,
  for hair colour; for eye colour the models so far scatter those places over face and hair, not
  the eyes), since random patches seldom say anything about the hair; and eye-colour hints on the
  eyes, where animeface finds them in the real test face (the middle of each eye box);
- hand-drawn (`drawings`, e.g. ../shared/data/sketches): each drawing normalised as
  `train sample --sketch` does and painted `DRAWING_PAINTINGS` ways, tags drawn from the
  training distribution: fidelity of every painting to the drawing's lines as drawn (normalised
  without the widening the model is given; the measures above, placed against the test split's
  floor and ceiling) and whether animeface finds a face in it (`framed`), beside
  how often it finds one in real test faces at the same size. The grid is RUN/eval_drawings.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from curate.detectors import AnimeFaceDetector, DetectorError, build, resolve
from curate.lineart import line_art, params_from_json
from db import Catalog

from train.eval.evaluate import inception_metrics, judge_summary, realism, run_conditions
from curate.taggers.classifier import Judge, accuracy, load_labelled
from train.sketch.hint_tags import tag_spread
from train.sketch.hints import hint_colour_error, no_hints, sample_hints
from train.sketch.paint import drawing_files, generator, paint_batch, paint_drawings, paint_with_tags, takes_hints
from train.runs import Run
from train.sampling import image_grid
from train.sketch.drawing import at_size, normalise_drawing
from train.sketch.metrics import fidelity, fidelity_report, ink, position
from train.sketch.metrics import line_art as ink_of_line_art

DRAWING_PAINTINGS = 8     # paintings per hand drawing
DETECT_SIDE = 128         # faces are upscaled to this, in a white margin half as wide (`framed`), before animeface
                          # looks for a face or eyes in them: a face that fills its picture is seldom found (57 of
                          # the first 60 shared faces so; upscaled to 256 without the margin, none of 200)
LBP_SIDE = 128            # ... and to this for the LBP cascade (it finds one in 78% of real 64 px test faces)
FACE_SCORE = 0.7          # animeface likelihood that counts as a face (as `curate crop --min-score`)
FACE_SAMPLE = 200         # real / painted test faces checked for a face (animeface is slow)
HINT_POINTS = 5           # colour patches per test sketch when measuring how hints are followed
PLACED_SHARE = 0.25       # hints placed for a tag group lie on this share of the pixels its tags change most
EYE_GROUP = "eye_color"   # the tag group whose hints go on the eyes


def test_sketches(catalog: Catalog, face_ids: list[int], run: Run) -> np.ndarray:
    """uint8 [N, S, S]: the faces' line art made with the run's parameters, at the run's size."""
    method, params = params_from_json(run.sketch["params"])
    return np.stack([at_size(line_art(blob, method, params), run.size)
                     for _, blob in catalog.iter_face_images(face_ids)])


def framed(img: np.ndarray, side: int = DETECT_SIDE) -> Image.Image:
    """An HxWx3 uint8 face upscaled to `side`, in a white margin half as wide, as animeface finds faces."""
    margin = side // 2
    canvas = Image.new("RGB", (side + 2 * margin,) * 2, (255, 255, 255))
    canvas.paste(Image.fromarray(img).resize((side, side), Image.Resampling.BICUBIC), (margin, margin))
    return canvas


def faces_found(images: torch.Tensor, detector=None, side: int = LBP_SIDE) -> np.ndarray:
    """bool [N]: `detector` finds a face in each uint8 [N, 3, S, S] picture: by default animeface
    (likelihood >= FACE_SCORE) in the picture `framed`; a detector given, in the picture upscaled to `side`."""
    pictures = images.permute(0, 2, 3, 1).numpy()
    if detector is None:
        animeface = AnimeFaceDetector(FACE_SCORE)
        return np.array([bool(animeface.detect(framed(img))) for img in pictures], dtype=bool)
    return np.array([bool(detector.detect(Image.fromarray(img).resize((side, side), Image.Resampling.BICUBIC)))
                     for img in pictures], dtype=bool)


def cascade(download: bool = False):
    """The LBP anime-face cascade (`curate crop --detector lbp`'s), or None where its file cannot be had
    (cached, ../shared's copy, or downloaded with `download`): a second opinion on whether paintings are
    faces, since animeface finds none in real 64 px faces."""
    try:
        return build(resolve("lbp", download=download))
    except DetectorError:
        return None


def hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


def evaluate_sketch_run(run: Run, judge: Judge, catalog: Catalog, seed: int = 0, rounds: int = 3,
                        drawings: Path | None = None, inception_weights=None, download: bool = False,
                        log=print, requested_n: int | None = None) -> dict:
    """All metrics of one sketch run as a plain dict (see the module docstring). `requested_n`:
    the faces `train eval -n` asked for, which a sketch run cannot follow (said, not silently)."""
    started = time.time()
    source = judge.options.source
    _, params = params_from_json(run.sketch["params"])
    log(f"loading real faces ({source!r} labels, {run.size}x{run.size}) and their line art")
    test = load_labelled(catalog, source, "test", run.size)
    real_train = load_labelled(catalog, source, "train", run.size)
    n = len(test.face_ids)
    if n < 2 or len(real_train.face_ids) < 2:
        raise ValueError(f"the catalog has {len(real_train.face_ids)} train and {n} test faces labelled by "
                         f"{source!r}: too few to evaluate against")
    if requested_n is not None and requested_n != n:
        log(f"-n {requested_n} does not apply to a sketch run: it paints the test split's {n} sketches")
    sketches = test_sketches(catalog, test.face_ids, run)
    G = generator(run)
    conditional = run.conditional and run.spec is not None
    own = run_conditions(run, test.tags)[0] if conditional else [{} for _ in range(n)]

    log(f"painting {n} test sketches with their own tags")
    painted = paint_batch(run, G, sketches, own, seed)
    result: dict = {"run": str(run.dir), "model": run.model, "labels": run.options.get("labels"), "size": run.size,
                    "n": n, "seed": seed, "judge": judge_summary(judge)}
    log("fidelity: line art of the paintings against their sketches")
    report = fidelity_report(hwc(painted), sketches, hwc(test.images), params, seed)
    sketch: dict = {"test_faces": n, "params": run.sketch["params"], "fidelity": report}

    f_fake = judge.features(painted)
    result.update(realism(f_fake, judge.features(test.images), judge.features(real_train.images), seed))
    if conditional:
        asked, painted_asked = [], []
        rng = np.random.default_rng(seed)
        for r in range(rounds):
            shift = int(rng.integers(1, n))
            tags = [own[(i + shift) % n] for i in range(n)]
            asked += tags
            painted_asked.append(paint_batch(run, G, sketches, tags, seed + 1 + r))
        painted_asked = torch.cat(painted_asked)
        log(f"judge accuracy on {len(asked)} paintings with other faces' tags")
        result["judge_accuracy"] = accuracy(judge.heads, judge.predict(painted_asked), asked)
        result["conditions"] = {"from": f"{source} test split, another face's tags per sketch", "rounds": rounds}
        sketch["judge_accuracy_own_tags"] = accuracy(judge.heads, judge.predict(painted), own)
        asked_fid = fidelity(ink_of_line_art(hwc(painted_asked[:n]), params), ink(sketches))
        sketch["fidelity_other_tags"] = {"chamfer": asked_fid.chamfer, "f1": asked_fid.f1, "position": {
            "chamfer": position(asked_fid.chamfer, report["floor"]["chamfer"], report["ceiling"]["chamfer"]),
            "f1": position(asked_fid.f1, report["floor"]["f1"], report["ceiling"]["f1"])}}
    sketch["noise"] = noise_spread(run, G, judge, sketches, own, test, seed)
    if takes_hints(run):
        log(f"colour hints: the test sketches painted with {HINT_POINTS} hint patches each, without, and "
            "against another face's tags")
        sketch["hints"] = hint_following(run, G, judge, sketches, own, test, seed)
    log("animeface on real and painted test faces")
    k = min(n, FACE_SAMPLE)
    sketch["faces_found"] = {"real": float(faces_found(test.images[:k]).mean()),
                             "painted": float(faces_found(painted[:k]).mean()), "n": k}
    lbp = cascade(download)
    if lbp is not None:
        sketch["faces_found"]["lbp"] = {"real": float(faces_found(test.images[:k], lbp, LBP_SIDE).mean()),
                                        "painted": float(faces_found(painted[:k], lbp, LBP_SIDE).mean())}
    if drawings is not None:
        sketch["drawings"] = hand_drawn(run, drawings, report, seed, log, lbp)
    result["sketch"] = sketch
    result["inception"] = inception_metrics(painted, real_train, test, inception_weights, download, n, log)
    result["seconds"] = round(time.time() - started, 1)
    return result


def noise_spread(run: Run, G, judge: Judge, sketches: np.ndarray, tags: list[dict], test, seed: int) -> dict:
    """Each sketch painted with two noises (same tags): how far apart the two paintings are, in
    pixels (RMS, [-1, 1] scale) and judge features, beside two different real test faces."""
    if run.conditional:        # groups the tags leave out: drawn once, the same for both paintings
        tags = run.spec.complete(tags, torch.Generator().manual_seed(seed))
    a, b = (paint_batch(run, G, sketches, tags, seed + k) for k in (101, 202))
    rms = lambda x, y: (((x.float() - y.float()) / 127.5) ** 2).flatten(1).mean(1).sqrt().mean().item()  # noqa: E731
    dist = lambda x, y: float(np.linalg.norm(x - y, axis=1).mean())  # noqa: E731
    fa, fb, ft = judge.features(a), judge.features(b), judge.features(test.images)
    return {"pixel_distance": rms(a, b), "real_pixel_distance": rms(test.images, test.images.roll(1, 0)),
            "judge_distance": dist(fa, fb), "real_judge_distance": dist(ft, np.roll(ft, 1, 0))}


def hand_drawn(run: Run, folder: Path, test_report: dict, seed: int, log, lbp=None) -> dict:
    """The drawings of `folder` painted: fidelity per drawing and faces found; the grid beside the run."""
    _, params = params_from_json(run.sketch["params"])
    files = drawing_files(folder)
    skipped: list[str] = []
    used, tiles = paint_drawings(run, files, {}, DRAWING_PAINTINGS, seed, warn=skipped.append)
    log(f"{len(used)} hand drawings painted {DRAWING_PAINTINGS} ways")
    picture = run.dir / "eval_drawings.png"
    Image.fromarray(image_grid(tiles, DRAWING_PAINTINGS + 1)).save(picture)
    per = DRAWING_PAINTINGS + 1
    rows = []
    for i, path in enumerate(used):
        # against the lines as drawn, not as widened for the model (train/sketch/drawing.py): a wider
        # sketch would be easier to land on, whatever the painting
        drawn = normalise_drawing(path, run.size, params, widen=False)
        faces = tiles[i * per + 1:(i + 1) * per]
        fid = fidelity(ink_of_line_art(hwc(faces), params), np.stack([ink(drawn)] * len(faces)))
        rows.append({"file": path.name, "chamfer": fid.chamfer, "f1": fid.f1,
                     "faces_found": float(faces_found(faces).mean())})
        if lbp is not None:
            rows[-1]["faces_found_lbp"] = float(faces_found(faces, lbp, LBP_SIDE).mean())
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("chamfer", "f1", "faces_found", "faces_found_lbp")
            if k in rows[0]}
    floor, ceiling = test_report["floor"], test_report["ceiling"]
    mean["position"] = {m: position(mean[m], floor[m], ceiling[m]) for m in ("chamfer", "f1")}
    return {"folder": str(folder), "paintings_each": DRAWING_PAINTINGS, "files": rows, "mean": mean,
            "skipped": skipped, "picture": str(picture)}


def hint_following(run: Run, G, judge: Judge, sketches: np.ndarray, own: list[dict], test, seed: int) -> dict:
    """How well the paintings follow colour hints sampled from each sketch's real face (see the module
    docstring): mean CIELAB Delta E at and around the hints, with, without, and with another face's tags."""
    n, size = len(sketches), run.size
    hints = sample_hints(test.images.float() / 127.5 - 1, torch.Generator().manual_seed(seed + 303),
                         points=HINT_POINTS)
    ring = size / 64                     # a pixel at 64x64: a hint a pixel off is still followed

    def error(faces: torch.Tensor) -> float:
        return float(np.nanmean(hint_colour_error(hwc(faces), hints, ring)))

    delta_e = {"with": error(paint_batch(run, G, sketches, own, seed, hints=hints, hints_decide=False)),
               "without": error(paint_batch(run, G, sketches, own, seed, hints=no_hints(n, size)))}
    out = {"points": HINT_POINTS, "ring_px": ring, "delta_e": delta_e,
           "reduction": delta_e["without"] / delta_e["with"] if delta_e["with"] > 0 else float("inf")}
    if run.conditional and run.spec is not None:
        shift = int(np.random.default_rng(seed + 303).integers(1, n))
        asked = [own[(i + shift) % n] for i in range(n)]
        conflict = paint_batch(run, G, sketches, asked, seed, hints=hints, hints_decide=False)
        delta_e["other_tags"] = error(conflict)
        out["judge_accuracy_other_tags"] = whom_the_judge_sees(judge, conflict, own, asked)
        out["hints_decide"] = hints_deciding(run, G, judge, sketches, own, asked, hints, seed, error)
        out["placed"] = hints_placed(run, G, judge, sketches, own, asked, test, seed)
    return out


def hints_placed(run: Run, G, judge: Judge, sketches, own: list[dict], asked: list[dict], test, seed: int) -> dict:
    """Per exclusive tag group, hints placed as a user places them for it (on the hair, for hair colour):
    HINT_POINTS patches from the real face among the PLACED_SHARE of pixels the group's tags paint most
    differently (each sketch painted once per tag, its other tags its own), against another face's tags:
    whom the judge sees for that group, by the network alone and with the hints deciding the tags."""
    real = test.images.float() / 127.5 - 1
    out = {}
    for g in (g for g in run.spec.groups if g.exclusive and len(g.tags) > 1):
        spread = tag_spread(torch.stack([paint_batch(run, G, sketches, [{**o, g.name: t} for o in own], seed)
                                         for t in g.tags], 1))                              # [N, S, S]
        where = spread >= spread.flatten(1).quantile(1 - PLACED_SHARE, dim=1)[:, None, None]
        hints = sample_hints(real, torch.Generator().manual_seed(seed + 404), points=HINT_POINTS, where=where)
        out[g.name] = whom_for_group(run, G, judge, sketches, own, asked, hints, g.name, seed)
    placed = {"share": PLACED_SHARE, "groups": out}
    if EYE_GROUP in out:
        placed["on_the_eyes"] = hints_on_the_eyes(run, G, judge, sketches, own, asked, test, seed)
    return placed


def whom_for_group(run: Run, G, judge: Judge, sketches, own: list[dict], asked: list[dict], hints, group: str,
                   seed: int) -> dict:
    """Another face's tags with hints from each sketch's own face: whom the judge sees for `group`, by
    the network alone and with the hints deciding, and how often the asked tag of the group gave way."""
    def whom(faces: torch.Tensor) -> dict:
        return {who: acc[group]["accuracy"] for who, acc in whom_the_judge_sees(judge, faces, own, asked).items()}

    decided, used = paint_with_tags(run, G, sketches, asked, seed, hints=hints)
    return {"network_alone": whom(paint_batch(run, G, sketches, asked, seed, hints=hints, hints_decide=False)),
            "hints_deciding": whom(decided), "asked_changed": share_changed(run, asked, used)[group]}


def hints_on_the_eyes(run: Run, G, judge: Judge, sketches, own: list[dict], asked: list[dict], test,
                      seed: int) -> dict:
    """Eye-colour hints as a user strokes them: HINT_POINTS patches from the real face in the middle of
    the eyes animeface finds in it, on the sketches whose face it finds them in (see whom_for_group)."""
    where = eye_places(test.images)
    found = where.flatten(1).any(1).numpy()
    keep = np.flatnonzero(found)
    out: dict = {"found": float(found.mean()), "n": int(len(keep))}
    if len(keep) < 2:
        return out
    real = test.images[keep].float() / 127.5 - 1
    hints = sample_hints(real, torch.Generator().manual_seed(seed + 505), points=HINT_POINTS, where=where[keep])
    pick = lambda tags: [tags[i] for i in keep]  # noqa: E731
    out.update(whom_for_group(run, G, judge, sketches[keep], pick(own), pick(asked), hints, EYE_GROUP, seed))
    return out


def eye_places(images: torch.Tensor, detector=None) -> torch.Tensor:
    """bool [N, S, S]: the middle half of each eye box animeface finds in each uint8 [N, 3, S, S] face
    (`framed`), all False where it finds none."""
    detector = detector or AnimeFaceDetector(FACE_SCORE)
    n, _, size, _ = images.shape
    margin, scale = DETECT_SIDE // 2, size / DETECT_SIDE
    where = torch.zeros(n, size, size, dtype=torch.bool)
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        faces = detector.eyes(framed(img))
        for eye in faces[0] if faces else ():
            x0, y0 = (eye.x - margin + eye.w / 4) * scale, (eye.y - margin + eye.h / 4) * scale
            x1, y1 = (eye.x - margin + eye.w * 3 / 4) * scale, (eye.y - margin + eye.h * 3 / 4) * scale
            where[i, max(0, int(y0)):min(size, int(np.ceil(y1))), max(0, int(x0)):min(size, int(np.ceil(x1)))] = True
    return where


def whom_the_judge_sees(judge: Judge, faces: torch.Tensor, own: list[dict], asked: list[dict]) -> dict:
    """Judge accuracy on sketches painted with hints from their own face and another face's tags: against
    the tags of the face the hints came from, and against the asked ones (hints should win)."""
    predicted = judge.predict(faces)
    return {"hints_face": accuracy(judge.heads, predicted, own), "asked": accuracy(judge.heads, predicted, asked)}


def share_changed(run: Run, given: list[dict], painted: list[dict]) -> dict:
    """Per exclusive group given a tag: the share of paintings painted with another one than given."""
    return {g: float(np.mean([p[g] != t[g] for t, p in zip(given, painted) if g in t]))
            for g in (g.name for g in run.spec.groups if g.exclusive) if any(g in t for t in given)}


def hints_deciding(run: Run, G, judge: Judge, sketches, own: list[dict], asked: list[dict], hints, seed: int,
                   error) -> dict:
    """The same, as the painter paints for users, where the hints decide the tags they speak for
    (train/sketch/hint_tags.py): with another face's tags, whom the judge sees and how often the asked
    tags gave way; with the face's own tags (hints and tags agree), how often they were changed."""
    conflict, used = paint_with_tags(run, G, sketches, asked, seed, hints=hints)
    _, kept = paint_with_tags(run, G, sketches, own, seed, hints=hints)
    return {"delta_e_other_tags": error(conflict),
            "judge_accuracy_other_tags": whom_the_judge_sees(judge, conflict, own, asked),
            "asked_changed": share_changed(run, asked, used), "own_changed": share_changed(run, own, kept)}
