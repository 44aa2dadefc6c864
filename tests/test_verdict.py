"""The compare report's head on hand-made figures: the verdict (which label source is better on
each figure, beyond the spread over seeds or not), the warnings, and the configurations' names."""

from __future__ import annotations

from pathlib import Path

from train.eval.alerts import judge_warnings, min_steps, run_warnings
from train.eval.published import disagreements, load_published
from train.eval.spread import full_options, group_runs
from train.eval.verdict import alike_key, compare_figure, verdict, with_arrow
from train.options import TrainOptions

KINDS = {"judge acc. hair_color": "pct", "judge FID": "num", "near-dup.": "pct", "% of ceiling (hair_color)": "pct"}


def fmt(value, kind):
    return f"{100 * value:.0f}%" if kind == "pct" else f"{value:.1f}"


def test_every_figure_says_which_way_is_better():
    assert [with_arrow(f) for f in ("judge acc. hair_color", "% of ceiling (hair_color)", "judge FID",
                                    "judge KID ×100", "mean intra-FID", "near-dup.", "Inception FID")] == [
        "judge acc. hair_color ↑", "% of ceiling (hair_color) ↑", "judge FID ↓", "judge KID ×100 ↓",
        "mean intra-FID ↓", "near-dup. ↓", "Inception FID ↓"]
    fid = compare_figure("judge FID", [5.0, 6.0, 5.5], [8.0, 9.0, 8.5])          # lower FID wins
    assert fid.better == 0 and fid.beyond and fid.decidable
    acc = compare_figure("judge acc. hair_color", [0.80, 0.82], [0.90, 0.91])     # higher accuracy wins
    assert acc.better == 1 and acc.beyond
    touching = compare_figure("judge FID", [5.0, 7.0], [7.0, 9.0])                # ranges meet: within
    assert touching.better == 0 and not touching.beyond
    one = compare_figure("judge FID", [5.0], [9.0])
    assert one.better == 0 and not one.beyond and not one.decidable



def test_verdict_pairs_label_sources_trained_alike_and_says_what_it_means():
    names = ["acgan · manual", "acgan · i2v", "cgan · manual"]
    labels = ["manual", "i2v", "manual"]
    alike = [alike_key({"model": "acgan", "labels": "manual", "faces": 900, "size": 32}),
             alike_key({"model": "acgan", "labels": "i2v", "faces": 870, "size": 32}),   # faces follow the labels
             alike_key({"model": "cgan", "labels": "manual", "faces": 900, "size": 32})]
    figures = [{"judge acc. hair_color": [0.90, 0.92, 0.91], "judge FID": [6.0, 8.0, 7.0], "near-dup.": [0.01] * 3,
                "% of ceiling (hair_color)": [1.0, 1.0, 1.0]},
               {"judge acc. hair_color": [0.80, 0.82, 0.81], "judge FID": [7.0, 9.0, 8.0], "near-dup.": [0.01] * 3,
                "% of ceiling (hair_color)": [0.9, 0.9, 0.9]},
               {"judge acc. hair_color": [0.5, 0.5, 0.5], "judge FID": [1.0, 1.0, 1.0], "near-dup.": [0.5] * 3}]
    v = verdict(names, labels, alike, figures, KINDS, fmt)
    assert v.sentences == ["acgan · manual beats acgan · i2v on judge acc. hair_color beyond the spread of 3 seeds; "
                           "judge FID, near-dup. differ within the spread."]
    assert v.rows[0] == ["label sources compared", "figure", "better", "worse", "beyond the spread over seeds?"]
    assert v.rows[1:] == [
        ["manual vs i2v", "judge acc. hair_color ↑", "acgan · manual: 91% (90% to 92%)",
         "acgan · i2v: 81% (80% to 82%)", "yes"],
        ["manual vs i2v", "judge FID ↓", "acgan · manual: 7.0 (6.0 to 8.0)", "acgan · i2v: 8.0 (7.0 to 9.0)", "no"],
        ["manual vs i2v", "near-dup. ↓", "acgan · manual: 1% (1% to 1%)", "acgan · i2v: 1% (1% to 1%)",
         "no (equal means)"]]
    # the other way round: i2v better on FID beyond the spread, with 3 and 2 seeds
    figures[1] = {"judge acc. hair_color": [0.90, 0.91], "judge FID": [2.0, 3.0]}
    v = verdict(names, labels, alike, figures, KINDS, fmt)
    assert v.sentences == ["acgan · i2v beats acgan · manual on judge FID beyond the spread of 3 and 2 seeds; "
                           "judge acc. hair_color differs within the spread."]
    assert v.rows[2][2:] == ["acgan · i2v: 2.5 (2.0 to 3.0)", "acgan · manual: 7.0 (6.0 to 8.0)", "yes"]


def test_no_verdict_with_one_seed_or_nothing_to_pair():
    names, labels = ["acgan · manual", "acgan · i2v"], ["manual", "i2v"]
    alike = [alike_key({"model": "acgan", "labels": x}) for x in labels]
    figures = [{"judge FID": [6.0]}, {"judge FID": [9.0]}]
    v = verdict(names, labels, alike, figures, KINDS, fmt)
    assert v.sentences == ["acgan · manual vs acgan · i2v: no verdict is possible with 1 seed: it needs at least 2 "
                           "(better 3) seeds per configuration."]
    assert v.rows[1][-1] == "no verdict (needs 2+ seeds)"
    two = [{"judge FID": [6.0, 7.0]}, {"judge FID": [6.5, 7.5]}]
    assert verdict(names, labels, alike, two, KINDS, fmt).sentences == [
        "acgan · manual vs acgan · i2v: no difference beyond the spread of 2 seeds on any figure."]
    other = [alike_key({"model": "acgan", "labels": "manual"}), alike_key({"model": "cgan", "labels": "i2v"})]
    v = verdict(names, labels, other, two, KINDS, fmt)
    assert len(v.rows) == 1 and v.sentences[0].startswith("No two configurations differ only in their label source")


def evaluation(hair=0.9, dup=0.01, fid=5.0, floor=1.0, judge_hair=0.8):
    tags = {"red hair": 0.8, "blue hair": 0.8, "green hair": 0.8, "black hair": 0.8}
    return {"judge": {"source": "manual", "test_accuracy": {"hair_color": judge_hair},
                      "test_per_tag": {"hair_color": tags}},
            "judge_accuracy": {"hair_color": {"accuracy": hair}}, "diversity": {"fake": {"near_duplicates": dup}},
            "judge_fid": fid, "floor": {"judge_fid": floor}}


def test_warnings_name_the_runs_not_worth_comparing():
    assert run_warnings("good", evaluation(), 2000, 32) == []
    said = run_warnings("bad", evaluation(hair=0.30, dup=0.95, fid=10.5), 499, 32)      # chance: 1/4, 1.5/4 = 37.5%
    assert [w.split(":")[1].split("(")[0].strip() for w in said] == [
        "the judge finds the asked hair_color near chance", "95% of its faces are near-duplicates",
        "judge FID 10.5 is 10x the real-vs-real floor", "499 steps is too few at 32 px"]
    assert all(w.startswith("bad: ") for w in said)
    assert run_warnings("x", evaluation(hair=0.38, dup=0.89, fid=10.0), 500, 32) == []   # just above each limit
    assert min_steps(32) == 500 and min_steps(64) == 1000 and min_steps(128) == 2000
    assert run_warnings("x", evaluation(), 1500, 128)[0].startswith("x: 1500 steps is too few at 128 px")
    assert run_warnings("x", evaluation(), None, 32) == []                               # trained by epochs
    assert judge_warnings(evaluation()["judge"]) == []
    assert judge_warnings(evaluation(judge_hair=0.35)["judge"])[0].startswith(
        "the judge (manual labels) reads hair_color on real test faces near chance (35.0%, chance 25.0%")


def test_configurations_are_named_short_with_their_options_folded_apart():
    acgan = TrainOptions(model="acgan", labels="manual").to_dict()
    pix2pix = TrainOptions(model="pix2pix", labels="manual").to_dict()
    uncond = TrainOptions(model="dcgan").to_dict()
    groups = group_runs([acgan, pix2pix, uncond])
    assert groups[0].name == "acgan · manual"               # each at its model's defaults: named by the model
    assert groups[1].name == "pix2pix · manual"
    assert groups[2].name.startswith("dcgan · unconditional")
    assert "none" not in groups[0].name and "l1-weight" not in full_options(groups[0].options)
    assert "--l1-weight 100.0" in full_options(groups[1].options) and "--size 64" in full_options(groups[0].options)


PUBLISHED = {"where": "the README", "findings": [
    {"figure": "judge FID", "better": "animeface", "worse": "manual", "seeds": 3,
     "setup": {"model": "acgan", "size": 32}}]}


def _found(fid_manual, fid_animeface, size=32):
    alike = [alike_key({"model": "acgan", "labels": lab, "size": size}) for lab in ("manual", "animeface")]
    figures = [{"judge FID": fid_manual}, {"judge FID": fid_animeface}]
    return verdict(["acgan · manual", "acgan · animeface"], ["manual", "animeface"], alike, figures,
                   KINDS, fmt).findings


def test_a_result_against_the_published_table_is_said_loudly():
    contradicts = disagreements(_found([5.0, 5.5, 6.0], [7.0, 8.0, 9.0]), PUBLISHED)
    assert len(contradicts) == 1 and contradicts[0].startswith("this contradicts the published result: here manual "
                                                               "is better on judge FID beyond the spread")
    assert "the README found animeface better than manual on judge FID beyond the spread of 3 seeds" in contradicts[0]
    within = disagreements(_found([6.0, 8.0], [7.0, 9.0]), PUBLISHED)
    assert len(within) == 1 and within[0].startswith("this does not reproduce the published result")
    one_seed = disagreements(_found([6.0], [7.0]), PUBLISHED)
    assert len(one_seed) == 1 and one_seed[0].startswith("one seed, so an anecdote, disagrees")
    # agreeing (beyond the spread, or one seed the same way), or another setup: nothing to say
    assert disagreements(_found([8.0, 9.0], [5.0, 6.0]), PUBLISHED) == []
    assert disagreements(_found([8.0], [5.0]), PUBLISHED) == []
    assert disagreements(_found([5.0, 5.5], [8.0, 9.0], size=64), PUBLISHED) == []


def test_the_shipped_published_result_is_the_readme_study():
    shipped = load_published()
    assert shipped["findings"] and all(f["figure"] in ("judge acc. hair_color", "judge FID")
                                       for f in shipped["findings"])
    assert load_published(Path("/nonexistent.json")) == {"findings": []}
