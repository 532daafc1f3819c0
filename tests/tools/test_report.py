"""tools/report's numbers: intervals, confusion matrices, sweep, recommendation, labels, reading logs.

Every matrix here is small enough to count by hand; the expected values are
those hand counts, not the code's own output.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from edge.decisions import decision_record
from edge.errors import DecisionLogError
from edge.types import Decision, Reason
from tools.report import ReportError
from tools.report.collect import collect
from tools.report.confusion import Confusion
from tools.report.json_report import to_json
from tools.report.labels import (
    CsvLabeller,
    NuaaLabeller,
    append_label,
    nuaa_truth,
    parse_enrolled,
    read_labels,
)
from tools.report.metrics import build_report
from tools.report.render import to_text
from tools.report.sections import sections
from tools.report.stats import (
    Rate,
    binomial_cdf,
    far_bound_text,
    rule_of_three,
    upper_bound,
    wilson,
)
from tools.report.wording import label_notes, recommendation_statement

T0 = 1_714_566_896.0  # 2024-05-01 (ISO week 2024-W18)
NUAA = Path(__file__).resolve().parents[1] / "data" / "nuaa"


# --------------------------------------------------------------------------- helpers (also used by test_report_cli)


def make_record(
    event_id: str,
    *,
    unlock: bool = False,
    reason: Reason | None = None,
    person: str | None = None,
    best: str | None = None,
    score: float = 0.5,
    second: str | None = None,
    second_score: float = -1.0,
    threshold: float = 0.6,
    min_margin: float = 0.1,
    t: float = T0,
    sources: tuple[str, ...] = (),
    snapshot: str | None = None,
    door: str = "",
) -> dict:
    """A schema record made the daemon's way: a Decision through decision_record."""
    reason = reason or (Reason.ACCEPTED if unlock else Reason.UNKNOWN_FACE)
    if unlock and person is None:
        person = best
    d = Decision(
        event_id=event_id,
        at=0.0,
        unlock=unlock,
        reason=reason,
        person=person,
        best=best,
        best_score=score,
        second=second,
        second_score=second_score,
        threshold=threshold,
        min_margin=min_margin,
        frames_used=5,
        frames_matched=4 if unlock else 0,
        track_id=1,
        quality={"face_px": 140.0},
        model_sha256="f" * 64,
        camera="test",
        sources=sources,
        door=door,
    )
    return decision_record(d, unix_time=t, snapshot=snapshot)


def write_log(path: Path, records: list[dict], *, tail: str = "") -> Path:
    """A JSON-lines log (gzipped if the name ends .gz); ``tail`` is appended raw (a torn line)."""
    data = "".join(json.dumps(r) + "\n" for r in records) + tail
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data.encode()))
    else:
        path.write_text(data)
    return path


def write_labels(path: Path, labels: dict[str, str]) -> Path:
    path.write_text("event_id,truth\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    return path


def report_of(
    tmp_path: Path,
    records: list[dict],
    labels: dict[str, str],
    *,
    enrolled=("alice", "bob"),
    target_far: float = 1e-3,
    attacks: bool = True,
    **kw,
):
    log = write_log(tmp_path / "decisions.jsonl", records)
    cols = collect([log], CsvLabeller(labels, "test"), enrolled=enrolled, progress=False, **kw)
    return build_report(
        cols, label_source="test", enrolled=enrolled, target_far=target_far, attacks=attacks
    )


# The hand-counted log: enrolled alice and bob, threshold 0.6.
HAND = [
    (make_record("a1", unlock=True, best="alice", score=0.9), "alice"),  # TP
    (make_record("a2", unlock=True, best="alice", score=0.8), "alice"),  # TP
    (make_record("a3", best="alice", score=0.55), "alice"),  # FN
    (make_record("b1", unlock=True, best="alice", score=0.7), "bob"),  # FP: bob let in as alice
    (make_record("b2", reason=Reason.LOW_QUALITY, best="bob", score=0.7), "bob"),  # FN
    (make_record("i1", unlock=True, best="bob", score=0.65), "impostor"),  # FP
    (make_record("i2", best="alice", score=0.3), "impostor"),  # TN
    (make_record("i3", best="bob", score=0.4), "impostor"),  # TN
    (make_record("x1", unlock=True, best="alice", score=0.75), "attack"),  # FP
    (make_record("x2", reason=Reason.PRESENTATION_ATTACK, best="alice", score=0.8), "attack"),  # TN
    (
        make_record("x3", reason=Reason.LOCKED_OUT, best="alice", score=0.9),
        "attack",
    ),  # TN, locked out
    (make_record("c1", best="bob", score=0.2), "carol"),  # a live person not enrolled: impostor, TN
    (make_record("u1", unlock=True, best="alice", score=0.9), None),  # unlabelled
]


@pytest.fixture
def hand(tmp_path):
    return report_of(tmp_path, [r for r, _ in HAND], {r["event_id"]: t for r, t in HAND if t})


# --------------------------------------------------------------------------- stats


def test_wilson_matches_known_values():
    assert wilson(0, 100) == (0.0, pytest.approx(0.0370, abs=5e-5))
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=5e-5)
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=5e-5), 1.0)
    assert wilson(0, 0) is None


def test_upper_bound_is_the_exact_one_sided_clopper_pearson_bound():
    assert upper_bound(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))  # 0.0295 < 3/100
    assert upper_bound(1, 10) == pytest.approx(0.3942, abs=5e-5)  # published table value
    for k, n in ((3, 50), (20, 200)):
        u = upper_bound(k, n)
        assert u is not None
        brute = sum(math.comb(n, i) * u**i * (1 - u) ** (n - i) for i in range(k + 1))
        assert brute == pytest.approx(0.05, abs=1e-9)
        assert binomial_cdf(k, n, u) == pytest.approx(brute, abs=1e-12)
    assert upper_bound(0, 0) is None and upper_bound(5, 5) == 1.0
    assert upper_bound(50_000, 1_000_000) == pytest.approx(
        0.05 + 1.645 * math.sqrt(0.05 * 0.95 / 1e6), abs=2e-5
    )


def test_zero_false_accepts_is_reported_as_a_bound_not_zero():
    text = far_bound_text(0, 300)
    assert "0 false accepts in 300" in text and "FAR < 3/300 = 1.00% at 95%" in text
    assert "exact one-sided 95% upper bound 0.99%" in text
    assert rule_of_three(300) == 0.01 and rule_of_three(0) is None and rule_of_three(2) == 1.0
    assert "nothing is known" in far_bound_text(0, 0)
    assert "far too few to bound FAR" in far_bound_text(0, 2) and "3/2" not in far_bound_text(0, 2)


def test_rate_of_nothing_is_na_not_zero():
    r = Rate(0, 0)
    assert r.value is None and r.interval is None and r.text() == "n/a (0/0)"
    assert r.to_json() == {"k": 0, "n": 0, "value": None, "wilson95": None}
    assert Rate(1, 4).text().startswith("25.00% (95% CI")


# --------------------------------------------------------------------------- confusion matrix


def test_hand_counted_confusion_matrix(hand):
    c = hand.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 3, 5, 2)
    assert (c.wrong_person, c.impostor_accepted, c.attack_accepted) == (1, 1, 1)
    assert (c.impostor_attempts, c.attack_attempts, c.genuine_attempts, c.n) == (4, 3, 5, 12)
    assert c.false_accepts == 3
    assert c.sensitivity.value == 2 / 4 and c.frr.value == 2 / 4
    assert c.specificity.value == 5 / 8 and c.far.value == 3 / 8
    assert c.ppv.value == 2 / 5 and c.npv.value == 5 / 7
    assert c.accuracy.value == 7 / 12
    assert c.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert hand.mean_genuine_score == pytest.approx((0.9 + 0.8 + 0.55 + 0.7 + 0.7) / 5)
    assert hand.mean_impostor_score == pytest.approx(
        (0.65 + 0.3 + 0.4 + 0.2 + 0.75 + 0.8 + 0.9) / 7
    )


def test_unlabelled_and_lockouts_are_counted_not_dropped(hand):
    assert hand.records == 13 and hand.unlabelled == 1 and hand.labelled == 12
    assert hand.unlabelled_why == {"not in the labels file": 1}
    assert hand.label_notes == () and hand.strangers == ("carol",)
    assert label_notes(hand) == ("truth names nobody enrolled, counted as impostors: carol",)
    assert hand.locked_out == {
        "total": 1,
        "genuine": 0,
        "impostor": 0,
        "attack": 1,
        "unlabelled": 0,
    }
    assert [e.event_id for e in hand.locked_out_examples] == ["x3"]
    assert sorted(e.event_id for e in hand.false_accept_examples) == ["b1", "i1", "x1"]
    text = to_text(hand)
    assert "UNLABELLED: 1" in text and "locked_out decisions: 1" in text


def test_wrong_person_unlock_is_a_false_accept(tmp_path):
    r = report_of(
        tmp_path, [make_record("b1", unlock=True, best="alice", score=0.8)], {"b1": "bob"}
    )
    c = r.confusion
    assert (c.tp, c.fp, c.tn, c.fn, c.wrong_person) == (0, 1, 0, 0, 1)
    assert c.far.value == 1.0 and c.sensitivity.value is None
    alice, bob = r.people
    assert (alice.name, alice.false_accepts_as) == ("alice", 1)
    assert (bob.attempts, bob.wrong_person, bob.tar.value) == (1, 1, None)


def test_all_genuine_leaves_specificity_undefined(tmp_path):
    recs = [
        make_record("a1", unlock=True, best="alice", score=0.9),
        make_record("a2", best="alice", score=0.4),
    ]
    c = report_of(tmp_path, recs, {"a1": "alice", "a2": "alice"}).confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (1, 0, 0, 1)
    assert c.specificity.value is None and c.far.value is None and c.far.interval is None
    assert c.ppv.value == 1.0 and c.npv.value == 0.0 and c.f1 == pytest.approx(2 / 3)


def test_all_impostor_leaves_sensitivity_undefined(tmp_path):
    recs = [make_record("i1", best="alice", score=0.3), make_record("i2", best="bob", score=0.2)]
    r = report_of(tmp_path, recs, {"i1": "impostor", "i2": "attack"})
    c = r.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (0, 0, 2, 0)
    assert (
        c.sensitivity.value is None and c.frr.value is None and c.ppv.value is None and c.f1 is None
    )
    assert c.specificity.value == 1.0 and c.npv.value == 1.0 and c.far.value == 0.0
    assert c.far_upper == pytest.approx(1 - 0.05**0.5)
    assert r.recommendation.threshold == 0.6 and not r.recommendation.meets_target


def test_empty_log_is_all_na_and_does_not_crash(tmp_path):
    r = report_of(tmp_path, [], {})
    c = r.confusion
    assert c == Confusion()
    assert all(rate.value is None for rate in c.rates().values()) and c.f1 is None
    assert r.mean_genuine_score is None and r.logged_threshold is None
    assert (
        r.recommendation.threshold is None
        and r.recommendation.basis == "no-negatives"
        and "no impostor or attack attempts" in recommendation_statement(r.recommendation)
    )
    out = to_json(r)
    assert out["confusion"]["sensitivity"]["value"] is None and out["confusion"]["f1"] is None
    json.dumps(out, allow_nan=False)
    assert "n/a (0/0)" in to_text(r)


def test_f1_is_zero_when_precision_and_recall_are_zero():
    assert Confusion(tp=0, fp=2, tn=1, fn=3).f1 == 0.0


# --------------------------------------------------------------------------- sweep and recommendation


def _sweep_log(impostor_scores: list[float], threshold: float = 0.6):
    genuine = [round(0.55 + 0.05 * i, 2) for i in range(9)]  # 0.55 .. 0.95
    recs, labels = [], {}
    for i, s in enumerate(genuine):
        recs.append(
            make_record(f"g{i}", unlock=s >= threshold, best="alice", score=s, threshold=threshold)
        )
        labels[f"g{i}"] = "alice"
    for i, s in enumerate(impostor_scores):
        recs.append(
            make_record(f"i{i}", unlock=s >= threshold, best="bob", score=s, threshold=threshold)
        )
        labels[f"i{i}"] = "impostor"
    return recs, labels


def test_sweep_redecides_by_best_score_margin_and_hard_denials(tmp_path):
    recs = [
        make_record("g1", unlock=True, best="alice", score=0.8),
        make_record(
            "g2", best="alice", score=0.8, second="bob", second_score=0.75, reason=Reason.AMBIGUOUS
        ),
        make_record("g3", reason=Reason.TOO_DARK, best="alice", score=0.9),
        make_record("i1", best="bob", score=0.5),
    ]
    labels = {"g1": "alice", "g2": "alice", "g3": "alice", "i1": "impostor"}
    r = report_of(tmp_path, recs, labels)
    sw = r.sweep
    assert sw.right.tolist() == [0.8] and sw.impostor.tolist() == [
        0.5
    ]  # g2 fails the margin, g3 is too dark
    c = sw.at(0.5)
    assert (c.tp, c.fn, c.fp, c.tn) == (1, 2, 1, 0)
    assert sw.at(0.8001).tp == 0
    assert r.redecide == {
        "agree": 4,
        "logged_unlock_replay_deny": 0,
        "logged_deny_replay_accept": 0,
    }
    loose = report_of(tmp_path, recs, labels, min_margin=0.01)
    assert loose.sweep.right.tolist() == [0.8, 0.8]


def test_recommends_lowest_threshold_whose_far_bound_meets_target(tmp_path):
    # 40 impostors at 0.10..0.49 and one at 0.70; target 0.1 needs zero false accepts
    # in 41 (bound 1-0.05**(1/41) = 0.07; one in 41 gives 0.11), so the threshold
    # must pass 0.70: the next score is the genuine 0.75.  TAR there: 0.75..0.95 = 5/9.
    recs, labels = _sweep_log([0.10 + 0.01 * i for i in range(40)] + [0.70])
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=0.1)
    rec = r.recommendation
    assert rec.meets_target and rec.threshold == 0.75
    assert (rec.confusion.tp, rec.confusion.fp) == (5, 0)
    assert rec.basis == "far-bound"
    assert recommendation_statement(rec).startswith(
        "threshold 0.7500 is the lowest whose FAR one-sided 95% upper bound (7.05%, 0 false accepts in 41)"
    )


def test_recommendation_may_keep_a_false_accept_the_bound_allows(tmp_path):
    # 200 impostors at 0.2 and one at 0.8: one false accept in 201 still bounds FAR
    # at 2.3% < 10%, so the lowest score above 0.2 (genuine 0.55) is recommended.
    recs, labels = _sweep_log([0.2] * 200 + [0.8])
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=0.1)
    assert r.recommendation.meets_target and r.recommendation.threshold == 0.55
    assert r.recommendation.confusion.fp == 1 and r.recommendation.confusion.tp == 9


def test_recommendation_never_exceeds_a_possible_similarity_and_can_leave_attacks_to_liveness(
    tmp_path,
):
    recs, labels = _sweep_log([0.30, 0.995], threshold=0.3)
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=1e-3)
    rec = r.recommendation
    assert rec.threshold == pytest.approx(0.9951)  # not 0.9951 + 0.01 > 1
    assert rec.basis == "zero-fa" and rec.capped and rec.with_margin == pytest.approx(1.0051)
    assert "above the largest possible similarity" in recommendation_statement(rec)
    labels["i1"] = "attack"  # the 0.995 one was a printed photo
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=1e-3, attacks=False)
    rec = r.recommendation
    assert rec.threshold == pytest.approx(0.3101)  # strangers only: 0.30 + 1e-4 + 0.01
    assert not rec.attacks and not rec.capped and rec.zero_fa == pytest.approx(0.3001)
    assert "photo attacks left to liveness" in recommendation_statement(rec)
    assert r.confusion.attack_accepted == 1  # still a false accept in the matrix


def test_too_few_impostors_says_so_and_never_loosens_the_door(tmp_path):
    recs, labels = _sweep_log([0.30, 0.35, 0.40, 0.45])
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=1e-3)
    rec = r.recommendation
    assert not rec.meets_target and rec.needed == 3000
    statement = recommendation_statement(rec)
    assert "4 impostor attempts cannot support FAR < 0.001 at 95%; need at least 3000" in statement
    assert "NOT MEETING THE TARGET" in statement
    assert (
        rec.threshold == 0.6
        and rec.kept_at_floor
        and "kept at the logged threshold 0.6000" in statement
    )  # 0.45+0.0001+0.01 < 0.6
    recs, labels = _sweep_log([0.30, 0.35, 0.40, 0.45], threshold=0.3)
    r = report_of(tmp_path, recs, labels, enrolled=("alice",), target_far=1e-3)
    assert (
        r.recommendation.threshold == pytest.approx(0.4601) and r.recommendation.confusion.fp == 0
    )
    dark = [
        make_record("d", reason=Reason.TOO_DARK, best="alice", score=0.9, threshold=0.3)
    ]  # no impostor reached a threshold
    r = report_of(tmp_path, dark + recs, {"d": "impostor", "g1": "alice"}, enrolled=("alice",))
    assert (
        r.recommendation.threshold == 0.3
        and r.recommendation.basis == "unscored"
        and "no impostor or attack attempt passed" in recommendation_statement(r.recommendation)
    )


# --------------------------------------------------------------------------- breakdowns


def test_per_person_reason_and_week(hand, tmp_path):
    alice, bob = hand.people
    assert (alice.attempts, alice.tp, alice.fn, alice.wrong_person, alice.false_accepts_as) == (
        3,
        2,
        1,
        0,
        2,
    )
    assert alice.tar.value == 2 / 3 and alice.frr.value == 1 / 3
    assert (bob.attempts, bob.tp, bob.fn, bob.wrong_person, bob.false_accepts_as) == (2, 0, 1, 1, 1)
    reasons = {r.reason: r for r in hand.reasons}
    assert (
        reasons["accepted"].total,
        reasons["accepted"].genuine,
        reasons["accepted"].unlabelled,
    ) == (6, 3, 1)
    assert (reasons["unknown_face"].genuine, reasons["unknown_face"].impostor) == (1, 3)
    assert reasons["locked_out"].attack == 1 and reasons["error"].total == 0
    recs = [
        make_record(
            "w1", unlock=True, best="alice", score=0.9, t=1704585600.0
        ),  # Sun 2024-01-07: W01
        make_record("w2", best="alice", score=0.5, t=1704672000.0),  # Mon 2024-01-08: W02
        make_record("w3", best="bob", score=0.3, t=1735516800.0),
    ]  # Mon 2024-12-30: 2025-W01
    r = report_of(tmp_path, recs, {"w1": "alice", "w2": "alice"})
    weeks = {w.week: w for w in r.weeks}
    assert list(weeks) == ["2024-W01", "2024-W02", "2025-W01"]
    assert weeks["2024-W01"].confusion.tp == 1 and weeks["2024-W02"].confusion.fn == 1
    assert weeks["2025-W01"].unlabelled == 1


# --------------------------------------------------------------------------- labels


def test_labels_csv_header_comments_and_quoting(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text(
        'event_id,truth\n# reviewed by hand\n\ne1,alice\ne2,impostor\n"e3","Smith, Jo"\ne1,alice\n'
    )
    assert read_labels(p) == {"e1": "alice", "e2": "impostor", "e3": "Smith, Jo"}
    p.write_bytes(
        "\ufeffevent_id,truth\ne1,Attack\ne2,IMPOSTOR\n".encode()
    )  # a spreadsheet's BOM and capitals
    assert read_labels(p) == {"e1": "attack", "e2": "impostor"}
    p.write_text("e1,attack\n")  # no header is fine
    assert read_labels(p) == {"e1": "attack"}


def test_labels_matching_no_decision_are_pointed_out(tmp_path):
    r = report_of(
        tmp_path, [make_record("a1", best="alice")], {"a1": "alice", "zz": "bob", "zy": "bob"}
    )
    assert r.label_notes == ("2 of 3 labels match no decision in these logs",)
    assert "labels: 2 of 3 labels match no decision" in to_text(r)


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("event_id,truth\ne1,alice\ne2,alice,extra\n", 3, "expected 2 fields"),
        ("e1,alice\ne2,\n", 2, "truth: empty"),
        ("e1,alice\n,bob\n", 2, "event_id: empty"),
        ("e1,alice\ne1,bob\n", 2, "contradicts 'alice' on line 1"),
    ],
)
def test_bad_labels_row_names_file_and_line(tmp_path, body, line, words):
    p = tmp_path / "labels.csv"
    p.write_text(body)
    with pytest.raises(ReportError) as exc:
        read_labels(p)
    msg = str(exc.value)
    assert msg.startswith(f"{p}:{line}: ") and words in msg and "\n" not in msg


def test_append_label_creates_header_and_repairs_a_missing_newline(tmp_path):
    p = tmp_path / "labels.csv"
    append_label(p, "e1", "alice")
    assert p.read_text() == "event_id,truth\ne1,alice\n"
    p.write_text("event_id,truth\ne1,alice")  # hand-edited, no final newline
    append_label(p, "e2", "Smith, Jo")
    assert read_labels(p) == {"e1": "alice", "e2": "Smith, Jo"}


def test_nuaa_truth_from_frame_paths():
    live1 = str(NUAA / "ClientRaw/0001/0001_00_00_01_0.jpg")
    photo = str(NUAA / "ImposterRaw/0001/0001_00_00_01_0.jpg")
    assert nuaa_truth([live1, live1]) == ("subject0001", None)
    assert nuaa_truth([photo]) == ("attack", None)
    assert nuaa_truth(["C:\\nuaa\\ClientRaw\\0004\\0004_01_00_01_0.jpg"]) == ("subject0004", None)
    assert nuaa_truth([]) == (None, "no NUAA frame in sources")
    assert nuaa_truth([live1, photo]) == (None, "sources disagree: attack + subject0001")
    assert parse_enrolled("subject0001, 0004") == ("subject0001", "subject0004")


def test_nuaa_labelling_in_a_report(tmp_path):
    def frames(kind: str, subject: str) -> tuple[str, ...]:
        return tuple(str(p) for p in sorted((NUAA / kind / subject).glob("*.jpg"))[:3])

    recs = [  # the committed samples: 0005 and 0009 live, 0001 live (a stranger), a photo of 0009
        make_record(
            "g", unlock=True, best="subject0009", score=0.8, sources=frames("ClientRaw", "0009")
        ),
        make_record(
            "w", unlock=True, best="subject0009", score=0.7, sources=frames("ClientRaw", "0005")
        ),
        make_record(
            "s", best="subject0005", score=0.3, sources=frames("ClientRaw", "0001")
        ),  # not enrolled
        make_record(
            "p", unlock=True, best="subject0009", score=0.7, sources=frames("ImposterRaw", "0009")
        ),
        make_record(
            "m",
            best="subject0009",
            score=0.3,
            sources=frames("ClientRaw", "0009") + frames("ImposterRaw", "0009"),
        ),
        make_record("n", best="subject0009", score=0.3, sources=("/cam/0.jpg",)),
    ]
    log = write_log(tmp_path / "decisions.jsonl", recs)
    enrolled = ("subject0005", "subject0009")
    r = build_report(
        collect([log], NuaaLabeller(), enrolled=enrolled, progress=False),
        label_source="nuaa",
        enrolled=enrolled,
    )
    c = r.confusion
    assert (
        c.tp,
        c.wrong_person,
        c.impostor_attempts,
        c.impostor_accepted,
        c.attack_accepted,
        c.tn,
    ) == (1, 1, 1, 0, 1, 1)
    assert r.unlabelled == 2
    assert r.unlabelled_why == {"sources disagree": 1, "no NUAA frame in sources": 1}


# --------------------------------------------------------------------------- reading logs


def test_rotated_gzip_siblings_and_a_torn_last_line(tmp_path, caplog):
    live = tmp_path / "decisions.jsonl"
    write_log(tmp_path / "decisions.jsonl.2.gz", [make_record("old", best="alice", score=0.2)])
    write_log(tmp_path / "decisions.jsonl.1.gz", [make_record("mid", best="alice", score=0.3)])
    write_log(
        live, [make_record("new", best="alice", score=0.4)], tail='{"schema":1,"event_id":"tor'
    )
    with caplog.at_level(logging.WARNING):
        cols = collect([live], CsvLabeller({}, "none"), progress=False)
    assert cols.n == 3 and [Path(f).name for f in cols.files] == [
        "decisions.jsonl.2.gz",
        "decisions.jsonl.1.gz",
        "decisions.jsonl",
    ]
    assert cols.score.tolist() == [0.2, 0.3, 0.4]  # oldest first
    assert any("torn last line" in m for m in caplog.messages)
    again = collect(
        [live, tmp_path / "decisions.jsonl.1.gz"], CsvLabeller({}, "none"), progress=False
    )
    assert again.n == 3  # a file named twice is read once


def test_a_record_breaking_the_schema_names_file_line_and_field(tmp_path):
    bad = make_record("b", best="alice", score=0.5)
    bad["best_score"] = "high"
    log = write_log(tmp_path / "decisions.jsonl", [make_record("a", best="alice")])
    log.write_text(log.read_text() + "\n" + json.dumps(bad) + "\n")  # a blank line first: line 3
    with pytest.raises(DecisionLogError) as exc:
        collect([log], CsvLabeller({}, "none"), progress=False)
    assert str(exc.value) == f"{log}:3: best_score: expected a number or null, got 'high'"
    cols = collect([log], CsvLabeller({}, "none"), progress=False, strict=False)
    assert cols.n == 1 and cols.skipped_bad == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1e308", "best_score: expected a number in [-1, 1], got 1e+308"),
        ("Infinity", "best_score: expected a finite number or null, got inf"),
        ("-Infinity", "best_score: expected a finite number or null, got -inf"),
        ("NaN", "best_score: expected a finite number or null, got nan"),
        (
            "1" + "0" * 400,
            "best_score: expected a finite number or null, got an integer of 401 digits",
        ),
    ],
)
def test_a_score_no_cosine_can_have_is_a_data_error_not_an_internal_one(tmp_path, raw, message):
    """1e308 or Infinity once reached the plots (an internal error): one line naming file, line, field."""
    bad = json.dumps(make_record("b", best="alice", score=0.5)).replace(
        '"best_score": 0.5', f'"best_score": {raw}'
    )
    assert raw in bad
    log = write_log(tmp_path / "decisions.jsonl", [make_record("a", best="alice")], tail=bad + "\n")
    with pytest.raises(DecisionLogError) as exc:
        collect([log], CsvLabeller({}, "none"), progress=False)
    assert str(exc.value) == f"{log}:2: {message}"
    cols = collect([log], CsvLabeller({}, "none"), progress=False, strict=False)
    assert cols.n == 1 and cols.skipped_bad == 1


def test_outcomes_by_face_metered_exposure(tmp_path):
    def at(stops, rec):
        rec["exposure_stops"] = stops
        return rec

    recs = [
        (
            at(1.8, make_record("g1", unlock=True, best="alice", score=0.9)),
            "alice",
        ),  # backlit, let in
        (
            at(1.5, make_record("g2", reason=Reason.PRESENTATION_ATTACK, best="alice", score=0.9)),
            "alice",
        ),  # backlit, refused as a photo
        (
            at(1.0, make_record("g3", best="alice", score=0.5)),
            "alice",
        ),  # backlit (band starts at 1), refused
        (at(0.1, make_record("g4", unlock=True, best="bob", score=0.9)), "bob"),  # about right
        (
            at(-0.1, make_record("x1", reason=Reason.PRESENTATION_ATTACK, best="bob", score=0.9)),
            "attack",
        ),
        (
            at(-2.0, make_record("x2", unlock=True, best="bob", score=0.9)),
            "attack",
        ),  # lamp-lit photo let in
        (at(None, make_record("i1", best="bob", score=0.2)), "impostor"),  # metering off
        (
            make_record("i2", best="bob", score=0.2),
            "impostor",
        ),  # a log from before the field existed
    ]
    r = report_of(tmp_path, [x for x, _ in recs], {x["event_id"]: t for x, t in recs})
    rows = {e.band: e for e in r.exposure}
    assert list(rows) == [
        "not face-metered",
        "darkened 1 stop or more (light on the face)",
        "within 0.25 stop of the camera's own",
        "brightened 1 stop or more (backlit)",
    ]
    back = rows["brightened 1 stop or more (backlit)"]
    assert back.decisions == 3 and (back.genuine_frr.k, back.genuine_frr.n) == (2, 3)
    assert (back.live_refused_by_liveness.k, back.live_refused_by_liveness.n) == (1, 3)
    lamp = rows["darkened 1 stop or more (light on the face)"]
    assert (lamp.negative_accepted.k, lamp.negative_accepted.n) == (1, 1)
    off = rows["not face-metered"]
    assert off.decisions == 2 and (off.negative_accepted.k, off.negative_accepted.n) == (0, 2)
    assert [e["band"] for e in to_json(r)["per_exposure"]] == list(rows)
    assert "brightened 1 stop or more (backlit)" in to_text(r)
    none = report_of(tmp_path, [make_record("a", best="alice")], {})
    assert none.exposure == [] and "no decision in these logs was face-metered" in to_text(none)
    bad = at("high", make_record("b", best="alice"))
    log = write_log(tmp_path / "bad.jsonl", [bad])
    with pytest.raises(
        DecisionLogError,
        match=r"bad.jsonl:1: exposure_stops: expected a number or null, got 'high'",
    ):
        collect([log], CsvLabeller({}, "none"), progress=False)


def test_missing_log_and_directory_are_report_errors(tmp_path):
    with pytest.raises(ReportError, match="no such decision log"):
        collect([tmp_path / "nope.jsonl"], CsvLabeller({}, "none"), progress=False)
    with pytest.raises(ReportError, match="is a directory"):
        collect([tmp_path], CsvLabeller({}, "none"), progress=False)


def test_columns_are_compact_arrays_not_records(tmp_path):
    recs = [make_record(f"e{i}", best="alice", score=0.5) for i in range(50)]
    log = write_log(tmp_path / "decisions.jsonl", recs)
    cols = collect([log], CsvLabeller({}, "none"), progress=False)
    per_record = sum(
        a.itemsize
        for a in (
            cols.score,
            cols.eligible,
            cols.truth,
            cols.person,
            cols.best,
            cols.unlock,
            cols.reason,
            cols.week,
            cols.exposure,
        )
    )
    assert per_record <= 28
    assert isinstance(cols.score, np.ndarray) and cols.names == ("alice",)


def test_sections_say_how_the_sweep_approximates(hand):
    text = "\n".join(line for s in sections(hand) for line in s.lines)
    assert "approximates the daemon's k-of-n frame vote by the attempt's best frame" in text


def test_the_logs_of_several_doors_are_broken_down_by_door(tmp_path):
    records = [
        make_record("f1", unlock=True, best="alice", score=0.9, door="front"),
        make_record("f2", best="alice", score=0.5, door="front"),
        make_record("b1", unlock=True, best="bob", score=0.8, door="back"),
        make_record("b2", unlock=True, best="alice", score=0.7, door="back"),  # bob let in as alice
    ]
    labels = {"f1": "alice", "f2": "alice", "b1": "bob", "b2": "bob"}
    r = report_of(tmp_path, records, labels)
    doors = {d.week: d for d in r.doors}
    assert set(doors) == {"front", "back"}
    assert (
        doors["front"].confusion.tp,
        doors["front"].confusion.fn,
        doors["front"].confusion.fp,
    ) == (1, 1, 0)
    assert (doors["back"].confusion.tp, doors["back"].confusion.fp) == (1, 1)
    text = to_text(r)
    assert "By door (mqtt.door_id)" in text
    assert to_json(r)["per_door"][0]["door"] == "back"
    single = report_of(tmp_path / "one", records[:2], labels)
    assert "By door" not in to_text(single)  # one door: nothing to break down


def test_remote_unlocks_are_counted_apart_from_the_face_attempts(tmp_path):
    records = [
        make_record("a1", unlock=True, best="alice", score=0.9),
        make_record(
            "r1", unlock=True, reason=Reason.REMOTE_UNLOCK, person="alice via ha", score=-1.0
        ),
        make_record("r2", reason=Reason.WRONG_CODE, person="mqtt", score=-1.0),
    ]
    r = report_of(tmp_path, records, {"a1": "alice"})
    assert r.records == 1 and r.confusion.tp == 1
    assert r.remote == {"remote_unlock": 1, "wrong_code": 1}
    assert (
        "remote unlock commands (not face attempts, counted apart): remote_unlock 1, wrong_code 1"
        in to_text(r)
    )


def test_only_the_unlocking_reasons_may_unlock(tmp_path):
    bad = make_record("x", unlock=True, best="alice", score=0.9)
    bad["reason"] = "wrong_code"
    with pytest.raises(DecisionLogError, match="only reasons accepted and remote_unlock unlock"):
        report_of(tmp_path, [bad], {})


def test_more_doors_than_a_column_holds_is_a_one_line_error(tmp_path):
    """Each column holds int16 codes: a hostile log with 32,002 door ids is refused, not overflowed."""
    records = [make_record(f"e{i}", best="alice", score=0.5, door=f"d{i}") for i in range(32002)]
    with pytest.raises(
        ReportError, match=r"more than 32000 distinct door ids in the logs \('d32001'\.\.\.\)"
    ):
        report_of(tmp_path, records, {})
