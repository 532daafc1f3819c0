"""tools/report's liveness at this door: truth from labels and drills, each cue's APCER/BPCER, the points.

The logs are written the daemon's way: each attempt's liveness object is edge.liveness.judge's
verdict (LivenessVerdict.as_dict) on a frame whose cue logits give the wanted live
probabilities, through edge.decisions.decision_record.  Expected counts are counted by hand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import liveness_log
import numpy as np
import pytest
from test_report import T0, write_labels, write_log

from edge.errors import DecisionLogError
from tools.report.collect import collect
from tools.report.door_liveness import GRID, recommend_points
from tools.report.json_report import to_json
from tools.report.labels import CsvLabeller, read_labels
from tools.report.metrics import build_report
from tools.report.render import to_text
from tools.report.sections import sections
from tools.report.stats import wilson

POINTS = liveness_log.POINTS
TITLE = "Liveness at this door (each cue on the reviewed attempts)"


def lv_record(event_id: str, cues: dict[str, float | None], *, t: float = T0, **kw: Any) -> dict:
    """liveness_log.lv_record at the report tests' time."""
    return liveness_log.lv_record(event_id, cues, t=t, **kw)


def door_report(tmp_path: Path, records: list[dict], labels: dict[str, str]):
    log = write_log(tmp_path / "decisions.jsonl", records)
    csv = write_labels(tmp_path / "labels.csv", labels)
    cols = collect([log], CsvLabeller(read_labels(csv), "test"), progress=False)
    return build_report(cols, label_source="test", enrolled=("alice",))


# --------------------------------------------------------------------------- truth and figures


def test_a_label_wins_over_the_drill_and_an_unlabelled_drill_attempt_is_an_attack(tmp_path):
    both = {"texture": 0.2, "minifasnet": 0.9}
    old = lv_record("old", both)
    del old["drill"]  # a log from before attack drills
    off = lv_record("off", both)
    off["liveness"] = None  # liveness switched off
    recs = [
        lv_record("labelled-attack", both),
        lv_record("drill", both, drill=True),
        lv_record("drill-stranger", both, drill=True),
        lv_record("drill-alice", both, drill=True),
        lv_record("drill-attack", both, drill=True),
        lv_record("alice", both),
        lv_record("nobody", both),
        old,
        off,
    ]
    labels = {
        "labelled-attack": "attack",
        "drill-stranger": "impostor",
        "drill-alice": "alice",
        "drill-attack": "attack",
        "alice": "alice",
        "off": "attack",
    }
    dl = door_report(tmp_path, recs, labels).door_liveness
    assert dl is not None
    assert dl.decisions == 8  # every record but the one with liveness off
    assert (dl.attacks, dl.attacks_by_drill, dl.live, dl.unused) == (3, 1, 3, 2)
    # texture at 0.2 refuses every attempt; MiniFASNet at 0.9 passes them all.
    texture, minifasnet = dl.cues
    assert (texture.cue, texture.apcer.k, texture.apcer.n) == ("texture", 0, 3)
    assert (texture.bpcer.k, texture.bpcer.n) == (3, 3)
    assert (minifasnet.apcer.k, minifasnet.bpcer.k) == (3, 0)


def test_each_cue_and_the_rule_at_the_newest_point_with_wilson_intervals(tmp_path):
    later = T0 + 3600
    recs, labels = [], {}
    # The newest decision (written first: the newest is the latest time, not the last line)
    # has texture at 0.5; earlier ones at 0.3.
    attacks = [(0.6, 0.9), (0.5, 0.1), (0.2, 0.8), (0.1, None)]  # (texture, minifasnet)
    live = [(0.4, 0.9), (0.7, 0.3), (0.9, 0.95)]
    for i, (tex, mfn) in enumerate(attacks + live):
        points = {"texture": 0.5 if i == 0 else 0.3, "minifasnet": 0.46}
        recs.append(
            lv_record(f"e{i}", {"texture": tex, "minifasnet": mfn}, points=points, t=later - i)
        )
        labels[f"e{i}"] = "attack" if i < len(attacks) else "impostor"
    dl = door_report(tmp_path, recs, labels).door_liveness
    assert dl is not None
    texture, minifasnet = dl.cues
    assert (texture.point, minifasnet.point) == (0.5, 0.46)
    # texture >= 0.5: attacks 0.6 and 0.5 (at the point counts as accepted); live below: 0.4.
    assert (texture.apcer.k, texture.apcer.n, texture.bpcer.k, texture.bpcer.n) == (2, 4, 1, 3)
    assert texture.apcer.interval == wilson(2, 4) and texture.bpcer.interval == wilson(1, 3)
    # MiniFASNet >= 0.46: attacks 0.9 and 0.8 (None scored no frame: refused); live below: 0.3.
    assert (minifasnet.apcer.k, minifasnet.bpcer.k) == (2, 1)
    assert list(minifasnet.attack_scores[:1]) == [-math.inf]
    # The rule needs both: only the attack (0.6, 0.9) passes; live 0.4 and 0.3 are refused.
    assert (dl.rule.attacks_accepted.k, dl.rule.attacks_accepted.n) == (1, 4)
    assert (dl.rule.live_refused.k, dl.rule.live_refused.n) == (2, 3)
    assert dl.rule.points == {"texture": 0.5, "minifasnet": 0.46}
    # Too few attempts to place a point, said in words.
    assert dl.advice.cues == () and "4 attack attempt(s), fewer than 10" in dl.advice.why_not
    text = to_text(door_report(tmp_path, recs, labels))
    assert TITLE in text and "no recommended liveness points" in text


def test_a_log_from_before_the_cues_were_split_is_the_texture_cue(tmp_path):
    old = lv_record("old", {"texture": 0.2})
    old["liveness"] = {"live": False, "live_probability": 0.2, "min_live_probability": 0.3}
    old["time"] = "2024-04-01T00:00:00.000Z"
    new = lv_record(
        "new", {"texture": 0.5, "minifasnet": 0.9}, points={"texture": 0.4, "minifasnet": 0.46}
    )
    dl = door_report(tmp_path, [old, new], {"old": "attack", "new": "attack"}).door_liveness
    assert dl is not None
    texture, minifasnet = dl.cues
    assert list(texture.attack_scores) == [0.2, 0.5] and texture.point == 0.4
    assert (texture.apcer.k, texture.apcer.n, minifasnet.apcer.n) == (1, 2, 1)
    # Only the newer attempt has both cues in force: the rule judges it alone.
    assert dl.left_out == 1 and dl.rule.attacks_accepted.n == 1


def test_a_bad_liveness_object_names_the_file_line_and_field(tmp_path):
    rec = lv_record("e1", {"texture": 0.4, "minifasnet": 0.9})
    rec["liveness"]["cues"]["minifasnet"]["live_probability"] = "high"
    log = write_log(tmp_path / "bad.jsonl", [lv_record("e0", {"texture": 0.4}), rec])
    with pytest.raises(
        DecisionLogError,
        match=r"bad.jsonl:2: liveness.cues.minifasnet.live_probability: expected a probability",
    ):
        collect([log], CsvLabeller({}, "none"), progress=False)
    cols = collect([log], CsvLabeller({}, "none"), progress=False, strict=False)
    assert cols.skipped_bad == 1 and cols.liveness.decisions == 1


# --------------------------------------------------------------------------- the recommended points


def test_a_cue_at_chance_is_lowered_when_another_cue_refuses_every_attack():
    rng = np.random.default_rng(7)
    attack = np.array([True] * 12 + [False] * 40)
    # texture at chance at this door: the same scores for attacks and live people.
    texture = rng.uniform(0.021, 1.0, attack.size)
    texture[12] = 0.021  # the lowest live score: every point up to 0.02 lets everyone through
    # MiniFASNet refuses every attack and lets every live person through.
    minifasnet = np.where(attack, rng.uniform(0.0, 0.009, attack.size), 0.95)
    advice = recommend_points({"texture": texture, "minifasnet": minifasnet}, attack, POINTS)
    assert advice.why_not == ""
    tex = advice.cues[0]
    assert tex.at_now.live_refused.k == int(np.count_nonzero(texture[~attack] < 0.46)) > 0
    # Every grid point up to 0.02 refuses no live attempt: 0.001..0.02, the middle is 0.005.
    assert tex.recommended == 0.005 and not tex.kept
    assert tex.at_recommended.live_refused.k == 0 and tex.at_recommended.attacks_accepted.k == 0
    assert advice.together is not None and advice.together.points["texture"] == 0.005
    assert advice.together.attacks_accepted.k == 0


def test_the_veto_moves_to_the_cue_that_separates_at_this_door_and_no_attack_gets_in():
    attack = np.array([True] * 12 + [False] * 30)
    # Attacks 0 and 1 pass MiniFASNet at 0.46; only texture (0.3, 0.35 < 0.5) refuses them,
    # and texture also refuses the household's low scorers.  MiniFASNet at 0.95 refuses the
    # two (0.9) and lets every live attempt (0.95) in, which frees texture.
    texture = np.concatenate([[0.3, 0.35], np.full(10, 0.9), np.linspace(0.05, 1.0, 30)])
    minifasnet = np.concatenate([[0.9, 0.9], np.full(10, 0.01), np.full(30, 0.95)])
    advice = recommend_points(
        {"texture": texture, "minifasnet": minifasnet},
        attack,
        {"texture": 0.5, "minifasnet": 0.46},
    )
    assert advice.now.attacks_accepted.k == 0 and advice.now.live_refused.k == 14
    assert advice.together is not None
    assert advice.together.points == {"texture": 0.005, "minifasnet": 0.95}
    assert advice.together.attacks_accepted.k == 0 and advice.together.live_refused.k == 0
    # one cue at a time (more cues than the joint search takes) cannot find it
    texture_only = recommend_points(
        {"texture": texture, "minifasnet": minifasnet},
        attack,
        {"texture": 0.5, "minifasnet": 0.46},
        joint=False,
    )
    tex = texture_only.cues[0]
    assert tex.recommended == 0.4  # lowered, but not to 0.3 where an attack it alone catches passes
    assert tex.at_recommended.attacks_accepted.k == 0


def test_tied_points_take_the_middle_of_the_grid_the_lower_of_two():
    attack = np.array([True] * 10 + [False] * 20)
    # Every grid point refuses every attack (0.0) and no live attempt (1.0): all 19 tie.
    # Nothing to gain: the point now stays (a change that spares nobody is no change).
    s = np.where(attack, 0.0, 1.0)
    advice = recommend_points({"texture": s}, attack, {"texture": 0.46})
    assert advice.cues[0].recommended == 0.46 and not advice.changes
    # Live at 0.985 refused now (0.99); 0.001..0.98 let them in and refuse every attack:
    # 18 grid points tie, the lower middle.
    s = np.where(attack, 0.0, 0.985)
    advice = recommend_points({"texture": s}, attack, {"texture": 0.99})
    assert advice.cues[0].recommended == GRID[8] == 0.2


def test_too_few_attempts_recommend_nothing_and_say_why():
    s = np.full(29, 0.5)
    attack = np.array([True] * 9 + [False] * 20)
    advice = recommend_points({"texture": s}, attack, {"texture": 0.46})
    assert advice.cues == () and advice.together is None
    assert (
        advice.why_not
        == "too few reviewed attempts to place a point: 9 attack attempt(s), fewer than 10"
    )
    attack = np.array([True] * 10 + [False] * 19)
    advice = recommend_points({"texture": s}, attack, {"texture": 0.46})
    assert "19 live attempt(s), fewer than 20" in advice.why_not and advice.cues == ()
    attack = np.array([True] * 10 + [False] * 20)
    assert recommend_points({"texture": np.full(30, 0.5)}, attack, {"texture": 0.46}).cues


def test_the_point_now_is_kept_when_every_grid_point_does_worse():
    attack = np.array([True] * 10 + [False] * 20)
    # An attack at 0.45 is refused at 0.46 and would pass at 0.4; five live attempts at 0.47
    # would be refused at 0.5.
    s = np.concatenate([[0.45], np.full(9, 0.01), np.full(5, 0.47), np.full(15, 0.9)])
    advice = recommend_points({"texture": s}, attack, {"texture": 0.46})
    (tex,) = advice.cues
    assert tex.kept and tex.recommended == 0.46 and not advice.changes


def test_points_that_each_lean_on_the_other_are_not_applied_together():
    attack = np.array([True] * 10 + [False] * 20)
    # Either cue alone refuses every attack (0.3 < 0.5), so each, the other at 0.5, can drop
    # below every live score (0.001..0.05 tie: 0.005); both there would let every attack in.
    # Each refuses other live people: texture the low ones, MiniFASNet the high ones.
    live = np.arange(1, 21) / 20  # 0.05, 0.1, ..., 1.0
    texture = np.concatenate([np.full(10, 0.3), live])
    minifasnet = np.concatenate([np.full(10, 0.3), live[::-1]])
    advice = recommend_points(
        {"texture": texture, "minifasnet": minifasnet},
        attack,
        {"texture": 0.5, "minifasnet": 0.5},
        joint=False,
    )
    assert advice.now.live_refused.k == 18  # 9 by each
    assert [c.recommended for c in advice.cues] == [0.005, 0.005]
    assert [c.at_recommended.live_refused.k for c in advice.cues] == [9, 9]
    assert advice.only == "texture"  # the first of two equal gains
    assert advice.together is not None
    assert advice.together.points == {"texture": 0.005, "minifasnet": 0.5}
    assert advice.together.attacks_accepted.k == 0 and advice.together.live_refused.k == 9
    # searched together, one cue keeps the veto just above the attacks (0.3) and the other drops
    joint = recommend_points(
        {"texture": texture, "minifasnet": minifasnet}, attack, {"texture": 0.5, "minifasnet": 0.5}
    )
    assert joint.together is not None and joint.together.attacks_accepted.k == 0
    assert joint.together.live_refused.k == 7 and joint.together.points == {
        "texture": 0.01,
        "minifasnet": 0.4,
    }


# --------------------------------------------------------------------------- the section and the JSON


def test_the_section_and_the_json_say_each_cue_now_and_recommended(tmp_path):
    rng = np.random.default_rng(3)
    recs, labels = [], {}
    for i in range(12):  # a drill: printed photos, unlabelled
        recs.append(
            lv_record(
                f"x{i}", {"texture": 0.7, "minifasnet": float(rng.uniform(0.06, 0.09))}, drill=True
            )
        )
    for i in range(40):  # the household: MiniFASNet refuses some of them at 0.46
        p = 0.3 if i < 9 else 0.9
        recs.append(lv_record(f"a{i}", {"texture": 0.8, "minifasnet": p}))
        labels[f"a{i}"] = "alice"
    report = door_report(tmp_path, recs, labels)
    dl = report.door_liveness
    assert dl is not None and (dl.attacks, dl.attacks_by_drill, dl.live) == (12, 12, 40)
    mfn = dl.advice.cues[1]
    # Above every attack (< 0.09) and at most 0.3: 0.1, 0.15, 0.2, 0.3; the lower middle is 0.15.
    assert (mfn.now, mfn.recommended) == (0.46, 0.15)
    text = to_text(report)
    assert TITLE in [s.title for s in sections(report)]
    assert (
        "MiniFASNet 0.46 -> 0.15: live attempts refused 22.50% (95% CI 12.32-37.50%, 9/40) -> "
        "0.00% (95% CI 0.00-8.76%, 0/40), attacks accepted 0.00% (95% CI 0.00-24.25%, 0/12) -> "
        "0.00% (95% CI 0.00-24.25%, 0/12) at this door's reviewed attempts"
    ) in text
    j = to_json(report)["liveness_at_this_door"]
    assert j["attacks_by_drill"] == 12 and j["live"] == 40
    assert j["recommendation"]["together"]["points"]["minifasnet"] == 0.15
    assert j["cues"][1]["apcer"]["k"] == 0 and j["cues"][1]["bpcer"] == {
        "k": 9,
        "n": 40,
        "value": 0.225,
        "wilson95": list(wilson(9, 40) or ()),
    }
    # No attack among the reviewed attempts: no section; no liveness verdict at all: null.
    no_attacks = door_report(tmp_path, recs[12:], labels)
    assert TITLE not in to_text(no_attacks)
    assert to_json(no_attacks)["liveness_at_this_door"]["attacks"] == 0
    off = [dict(r, liveness=None) for r in recs]
    assert to_json(door_report(tmp_path, off, labels))["liveness_at_this_door"] is None
