"""LFW through the whole device pipeline (needs ../shared/data; skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.pipeline import build_pipeline
from tools.bench.lfw import embed_all, score_pairs
from tools.lfw import read_pairs
from tools.verification import kfold_accuracy, tar_at_far


@pytest.mark.data
def test_view1_sample_verifies_at_lfw_grade(shared_data, config):
    """200 View 1 pairs (100 same, 100 different): a quick guard on the whole pipeline."""
    pairs = read_pairs(shared_data / "lfw" / "pairsDevTest.txt")
    pairs = pairs[:100] + pairs[500:600]
    emb, _ = embed_all(
        build_pipeline(config), sorted({p for pr in pairs for p in (pr.a, pr.b)}), progress=False
    )
    scores, labels, _, failed = score_pairs(pairs, emb)
    folds = np.arange(len(pairs)) % 10
    assert failed == 0
    assert kfold_accuracy(scores, labels, folds).accuracy >= 0.97
    assert scores[labels].mean() - scores[~labels].mean() > 0.4


def test_pairs_parser_reads_both_views(tmp_path):
    (tmp_path / "v2.txt").write_text("2 1\nA\t1\t2\nA\t1\tB\t3\nC\t4\t5\nC\t1\tD\t1\n")
    pairs = read_pairs(tmp_path / "v2.txt", tmp_path)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[1].b == tmp_path / "B" / "B_0003.jpg"
    (tmp_path / "v1.txt").write_text("1\nA\t1\t2\nA\t1\tB\t3\n")
    assert len(read_pairs(tmp_path / "v1.txt", tmp_path)) == 2
    (tmp_path / "bad.txt").write_text("1\nA\t1\n")
    from tools.lfw import PairsError

    with pytest.raises(PairsError, match=r"bad\.txt: expected 2 pairs, found 1"):
        read_pairs(tmp_path / "bad.txt", tmp_path)


def test_verification_metrics_on_hand_made_scores():
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2, 0.75, 0.1])
    labels = np.array([True, True, True, True, False, False, False, False])
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    # every threshold chosen on one fold and applied to the other
    k = kfold_accuracy(scores, labels, folds)
    assert 0 <= k.accuracy <= 1 and len(k.fold_accuracies) == 2
    tar, th = tar_at_far(scores, labels, 0.25)  # one impostor of four may pass: 0.75 does
    assert th == pytest.approx(0.3 + 1e-9) and tar == pytest.approx(1.0)
    tar0, th0 = tar_at_far(scores, labels, 0.0)  # no impostor may pass: above 0.75
    assert th0 > 0.75 and tar0 == pytest.approx(0.5)
