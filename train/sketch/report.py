"""What `train eval` prints and `train compare` reports of sketch runs (train/sketch/evaluate.py):
the pieces of the sketch model's evaluation hook (train/sketch/hooks.py)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from rich.table import Table

from curate.text import visible

from train.eval.report_pages import Section, run_label
from train.runs import Run, RunError, safe_slug


def _f(x, fmt=".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _pct(x) -> str:
    return _f(None if x is None else 100 * x, ".1f") + ("%" if x is not None and not math.isnan(x) else "")


def fidelity_rows(s: dict) -> list[list[str]]:
    """[measure, model, floor, ceiling, position] for Chamfer and F1, and the other-tags paintings."""
    f = s["fidelity"]
    rows = [["Chamfer distance (px, lower better)", _f(f["model"]["chamfer"]), _f(f["floor"]["chamfer"]),
             _f(f["ceiling"]["chamfer"]), _pct(f["position"]["chamfer"])],
            ["edge F1 (higher better)", _f(f["model"]["f1"], ".3f"), _f(f["floor"]["f1"], ".3f"),
             _f(f["ceiling"]["f1"], ".3f"), _pct(f["position"]["f1"])]]
    other = s.get("fidelity_other_tags")
    if other:
        rows += [["Chamfer, painted with another face's tags", _f(other["chamfer"]), "", "",
                  _pct(other["position"]["chamfer"])],
                 ["edge F1, painted with another face's tags", _f(other["f1"], ".3f"), "", "",
                  _pct(other["position"]["f1"])]]
    d = s.get("drawings")
    if d:
        m = d["mean"]
        rows += [[f"Chamfer, {len(d['files'])} hand drawings", _f(m["chamfer"]), "", "", _pct(m["position"]["chamfer"])],
                 [f"edge F1, {len(d['files'])} hand drawings", _f(m["f1"], ".3f"), "", "", _pct(m["position"]["f1"])]]
    return rows


def print_sketch_eval(console, r: dict) -> None:
    s = r["sketch"]
    table = Table(title=f"fidelity to the sketch: {s['test_faces']} test sketches (position: 0% = the real face's "
                  "own line art with other parameters, 100% = another face)")
    for col in ("measure", "model", "floor", "ceiling", "position"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in fidelity_rows(s):
        table.add_row(*row)
    console.print(table)
    own, ceiling = s.get("judge_accuracy_own_tags", {}), r["judge"]["test_accuracy"]
    for group, acc in r.get("judge_accuracy", {}).items():
        line = (f"judge {group}: {acc['accuracy']:.1%} with another face's tags, "
                f"{own.get(group, {}).get('accuracy', float('nan')):.1%} with its own (real test ceiling "
                f"{ceiling.get(group, float('nan')):.1%}: {acc['accuracy'] / ceiling[group]:.0%} of it)"
                if ceiling.get(group) else f"judge {group}: {acc['accuracy']:.1%}")
        console.print(line, markup=False)
    z = s["noise"]
    console.print(f"noise: two paintings of one sketch differ by {z['pixel_distance']:.3f} RMS "
                  f"({z['judge_distance']:.2f} in judge features); two real faces by {z['real_pixel_distance']:.3f} "
                  f"({z['real_judge_distance']:.2f})", markup=False)
    for line in hint_lines(s.get("hints")):
        console.print(line, markup=False)
    ff = s["faces_found"]
    console.print(f"animeface finds a face in {ff['painted']:.0%} of painted test faces, {ff['real']:.0%} of real "
                  f"ones (of {ff['n']}, upscaled in a white margin)", markup=False)
    if "lbp" in ff:
        console.print(f"the LBP anime-face cascade finds one in {ff['lbp']['painted']:.0%} of painted test faces, "
                      f"{ff['lbp']['real']:.0%} of real ones", markup=False)
    d = s.get("drawings")
    if d:
        for row in d["files"]:
            lbp = f" (the LBP cascade: {row['faces_found_lbp']:.0%})" if "faces_found_lbp" in row else ""
            console.print(f"hand drawing {visible(row['file'])}: Chamfer {row['chamfer']:.2f} px, F1 {row['f1']:.3f}, "
                          f"a face found in {row['faces_found']:.0%} of {d['paintings_each']} paintings{lbp}",
                          markup=False)
        for why in d["skipped"]:
            console.print(visible(why), style="yellow", markup=False)
        console.print(f"hand drawings painted: {visible(d['picture'])}", markup=False)


def hint_lines(h: dict | None) -> list[str]:
    """A hints run's colour-hint figures as sentences (train/sketch/evaluate.py `hint_following`)."""
    if not h:
        return []
    e = h["delta_e"]
    lines = [f"colour hints ({h['points']} patches from the real face): CIELAB error at the hinted places "
             f"{_f(e['with'], '.1f')} with them, {_f(e['without'], '.1f')} without ({_f(h['reduction'], '.2f')}x "
             "lower with them)"]
    if "other_tags" in e:
        lines.append(f"hints against another face's tags, the network alone: error {_f(e['other_tags'], '.1f')}")
        lines += _whom_the_judge_sees(h["judge_accuracy_other_tags"])
    d = h.get("hints_decide")
    if d:
        changed = ", ".join(f"{g} {_pct(v)}" for g, v in d["asked_changed"].items())
        own = ", ".join(f"{g} {_pct(v)}" for g, v in d["own_changed"].items())
        lines.append(f"as painted for users, the hints deciding the tags they speak for: error "
                     f"{_f(d['delta_e_other_tags'], '.1f')}; the asked tags changed: {changed} (own tags, which the "
                     f"hints agree with: {own})")
        lines += _whom_the_judge_sees(d["judge_accuracy_other_tags"])
    placed = h.get("placed")
    if placed:
        lines.append(f"hints placed for one tag group (on the {_pct(placed['share'])} of pixels its tags change "
                     "most; for hair colour, mostly the hair), against another face's tags:")
        lines += [f"  judge {group}: {_placed(p)}" for group, p in placed["groups"].items()]
    eyes = (placed or {}).get("on_the_eyes")
    if eyes and "network_alone" in eyes:
        lines.append(f"eye-colour hints on the eyes (animeface found them in {_pct(eyes['found'])} of the real test "
                     f"faces; {eyes['n']} sketches): {_placed(eyes)}")
    return lines


def _placed(p: dict) -> str:
    """One group's figures for hints placed as a user places them (train/sketch/evaluate.py whom_for_group)."""
    return (f"the hints' face / the asked tags {_pct(p['network_alone']['hints_face'])} / "
            f"{_pct(p['network_alone']['asked'])} by the network alone, {_pct(p['hints_deciding']['hints_face'])} / "
            f"{_pct(p['hints_deciding']['asked'])} with the hints deciding (the asked tag changed: "
            f"{_pct(p['asked_changed'])})")


def _whom_the_judge_sees(acc: dict) -> list[str]:
    """Per tag group: how often the judge sees the hints' face's tag, and the asked one."""
    return [f"  judge {group}: the hints' face {_pct(a['accuracy'])}, the asked tags "
            f"{_pct(acc['asked'].get(group, {}).get('accuracy'))}" for group, a in acc["hints_face"].items()]


def sketch_section(runs: list[Run], evals: list[dict], out_dir: Path) -> Section | None:
    """The compare report's section on sketch runs, or None when none of them was scored as one."""
    pairs = [(run, ev) for run, ev in zip(runs, evals) if "sketch" in ev]
    if not pairs:
        return None
    groups = list(pairs[0][1]["judge"]["test_accuracy"])
    table = [["run", "Chamfer model / floor / ceiling", "position (Chamfer)", "position (F1)",
              *[f"judge {g}: other tags / own (% of ceiling)" for g in groups[:2]], "noise spread / real",
              "face found (painted / real)", "hand drawings: position (Chamfer), face found",
              "hint colour error with / without / other tags (Delta E)"]]
    images = []
    for k, (run, ev) in enumerate(pairs):
        s, ceiling = ev["sketch"], ev["judge"]["test_accuracy"]
        f = s["fidelity"]
        accs = []
        for g in groups[:2]:
            asked = ev.get("judge_accuracy", {}).get(g, {}).get("accuracy")
            own = s.get("judge_accuracy_own_tags", {}).get(g, {}).get("accuracy")
            accs.append("–" if asked is None else
                        f"{_pct(asked)} / {_pct(own)} ({_pct(asked / ceiling[g]) if ceiling.get(g) else '–'})")
        d = s.get("drawings")
        table.append([run_label(run),
                      f"{_f(f['model']['chamfer'])} / {_f(f['floor']['chamfer'])} / {_f(f['ceiling']['chamfer'])}",
                      _pct(f["position"]["chamfer"]), _pct(f["position"]["f1"]), *accs,
                      f"{_f(s['noise']['pixel_distance'], '.3f')} / {_f(s['noise']['real_pixel_distance'], '.3f')}",
                      f"{_pct(s['faces_found']['painted'])} / {_pct(s['faces_found']['real'])}",
                      f"{_pct(d['mean']['position']['chamfer'])}, {_pct(d['mean']['faces_found'])}" if d else "–",
                      hint_cell(s.get("hints"))])
        if d and Path(d["picture"]).exists():
            png = out_dir / f"drawings_{k}_{safe_slug(run.dir.name, 'run')}.png"
            shutil.copy(d["picture"], png)
            images.append((f"{run_label(run)}: hand drawings (sketch, then paintings)", png))
    text = ("Fidelity: the line art of each test sketch's painting against the sketch; position 0% is the floor "
            "(the real face's own line art made with other parameters), 100% the ceiling (another real face's). "
            "Judge accuracy: each sketch painted with another test face's tags (own: with its own, which the "
            "sketch helps). Noise spread: RMS distance between two paintings of one sketch, beside two real "
            "faces. Hand drawings: fidelity placed between the test split's floor and ceiling, and how often "
            "animeface finds a face in the paintings. Hint colour error: CIELAB Delta E at and around 5 colour "
            "patches taken from the real face, painted with them, without them, and with them and another "
            "face's tags (hints should win).")
    return Section("Sketch models", text, table, images)


def hint_cell(h: dict | None) -> str:
    if not h:
        return "–"
    e = h["delta_e"]
    return " / ".join(_f(e.get(k), ".1f") for k in ("with", "without", "other_tags"))


def sketch_grid(run: Run, path: Path) -> Path:
    """A sketch run's newest training grid (rows: held-out sketches; columns: sketch, real face, paintings)."""
    grids = sorted(run.samples_dir.glob("[0-9]*.png"))
    if not grids:
        raise RunError(f"{run.dir} has no sample grid yet")
    shutil.copy(grids[-1], path)
    return path
