"""tools/liveness: the metrics, the evaluation command on held-out data, and the training script end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.errors import ExitCode
from tools.liveness import TEST_SUBJECTS, TRAIN_SUBJECTS
from tools.liveness.data import Crops
from tools.liveness.metrics import attempt_groups, attempt_scores, choose_threshold, curve, rates


def test_the_split_is_by_subject_and_disjoint():
    assert set(TRAIN_SUBJECTS).isdisjoint(TEST_SUBJECTS)
    assert len(set(TRAIN_SUBJECTS) | set(TEST_SUBJECTS)) == 10


def test_attempts_are_consecutive_frames_of_one_clip_in_recording_order():
    clip = np.array(["a", "a", "a", "b", "b", "a", "b", "b"])
    frame_no = np.array([12, 2, 30, 5, 1, 7, 3, 9])
    groups = attempt_groups(clip, frame_no, 2)
    # clip a by frame number: 2 (1), 7 (5), 12 (0), 30 (2) -> [1, 5], [0, 2]; clip b: 1, 3, 5, 9 -> [4, 6], [3, 7]
    assert [list(g) for g in groups] == [[1, 5], [0, 2], [4, 6], [3, 7]]
    assert attempt_groups(clip, frame_no, 5) == []  # remainders are dropped


def test_an_attempt_scores_the_mean_logit_as_a_probability():
    logits = np.array([2.0, -2.0, 4.0, 0.0])
    scores, live, first = attempt_scores(
        logits, np.array(["a"] * 4), np.arange(4), np.array([True] * 4), 2
    )
    assert (
        scores == pytest.approx([0.5, 1 / (1 + np.exp(-2.0))])
        and live.all()
        and list(first) == [0, 2]
    )


def test_apcer_and_bpcer_count_the_right_errors():
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    live = np.array([True, True, True, False, False, False])
    apcer, bpcer = rates(scores, live, 0.5)
    assert apcer == pytest.approx(1 / 3) and bpcer == pytest.approx(1 / 3)
    assert rates(scores, live, 0.6) == (pytest.approx(1 / 3), pytest.approx(1 / 3))  # >= accepts
    assert np.isnan(rates(scores[:3], live[:3], 0.5)[0])
    th, a, b = curve(scores, live)
    assert th.tolist() == [0.1, 0.2, 0.3, 0.6, 0.8, 0.9, np.inf]  # every score, and one above all
    assert a[0] == 1.0 and b[0] == 0.0 and a[-1] == 0.0 and b[-1] == 1.0
    assert np.all(np.diff(a) <= 0) and np.all(np.diff(b) >= 0)


def test_operating_point_is_the_middle_of_the_best_range_within_the_bpcer_bound():
    scores = np.array([0.1, 0.2, 0.36, 0.69, 0.7, 0.8, 0.9])
    live = np.array([0, 0, 0, 1, 1, 1, 1], bool)
    t = choose_threshold(scores, live, max_bpcer=0.0)
    assert t == pytest.approx((0.36 + 0.69) / 2) and rates(scores, live, t) == (0.0, 0.0)
    # Overlap: the lowest APCER that keeps BPCER <= 25% (one live attempt of four may be refused).
    scores = np.array([0.1, 0.75, 0.5, 0.7, 0.8, 0.9])
    live = np.array([0, 0, 1, 1, 1, 1], bool)
    t = choose_threshold(scores, live, max_bpcer=0.25)
    apcer, bpcer = rates(scores, live, t)
    # APCER 0.5 is the best within the bound, for any t in (0.1, 0.7]: the middle is 0.4.
    assert apcer == 0.5 and bpcer == 0.0 and t == pytest.approx(0.4)


def test_evaluate_on_a_held_out_subject_writes_rates_curve_and_costs(
    samples, model_dir, tmp_path, capsys, monkeypatch
):
    from tools.liveness.evaluate import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    assert (
        main(["--nuaa", str(samples / "nuaa"), "--subjects", "0009", "--out", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "APCER" in out and "BPCER" in out and "cost per frame: detect" in out
    data = json.loads((tmp_path / "liveness_eval.json").read_text())
    assert data["attempts"]["attack"] >= 2 and data["attempts"]["live"] >= 2
    assert data["apcer"] == 0.0 and data["bpcer"] == 0.0  # subject 0009 never trained the model
    assert data["curve"]["apcer"][0] == 1.0 and data["cost_ms_per_frame"]["liveness"] > 0
    assert (tmp_path / "liveness_curve.png").stat().st_size > 0


def test_evaluate_refuses_subjects_the_model_was_trained_on(
    samples, model_dir, capsys, monkeypatch
):
    from tools.liveness.evaluate import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    assert main(["--nuaa", str(samples / "nuaa"), "--subjects", "0005", "0009"]) == ExitCode.DATA
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training.subjects: 0005 trained this model" in err[0]


def test_evaluate_on_a_folder_without_nuaa_frames_is_one_clear_error(
    tmp_path, model_dir, capsys, monkeypatch
):
    from tools.liveness.evaluate import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    assert main(["--nuaa", str(tmp_path), "--subjects", "0009"]) == ExitCode.DATA
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no NUAA frames of subjects 0009" in err[0]


def test_evaluate_images_scores_every_still_and_names_the_worst(
    samples, model_dir, tmp_path, capsys, monkeypatch
):
    from tools.liveness.evaluate import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    live, attack = tmp_path / "live", tmp_path / "attack"
    shutil.copytree(samples / "nuaa" / "ClientRaw" / "0009", live)
    shutil.copytree(samples / "nuaa" / "ImposterRaw" / "0009", attack)
    (attack / "broken.jpg").write_bytes(b"not a jpeg")
    blank = np.zeros((240, 320, 3), np.uint8)
    import cv2

    cv2.imwrite(str(live / "blank.png"), blank)
    out = tmp_path / "out"
    assert main(["--images", str(live), str(attack), "--out", str(out), "--worst", "2"]) == 0
    text = capsys.readouterr().out
    assert "1 without a face" in text and "1 unreadable" in text
    assert "AUC" in text and "APCER at BPCER 1%" in text and "minifasnet alone" in text
    data = json.loads((out / "liveness_stills.json").read_text())
    assert data["images"] == {"live": 16, "attack": 11} and data["no_face"]["live"] == 1
    rule = data["rule"]
    # the committed live frames of 0009 and its printed photo: the rule separates them
    assert rule["auc"] == 1.0 and rule["apcer"] == 0.0 and rule["bpcer"] == 0.0
    # the door's view: the blank live image lets nobody in
    assert rule["door"] == {"apcer": 0.0, "bpcer": 1 / 16}
    assert set(data["cues"]) == {"texture", "minifasnet"} and len(data["worst_live"]) == 2
    assert sum(1 for r in data["per_image"] if r["logits"] is None) == 2


def test_evaluate_images_of_an_empty_folder_is_one_clear_error(
    tmp_path, capsys, model_dir, monkeypatch
):
    from tools.liveness.evaluate import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    (tmp_path / "a").mkdir()
    assert main(["--images", str(tmp_path / "a"), str(tmp_path / "b")]) == ExitCode.DATA
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no images" in err[0]


def test_still_metrics_auc_and_apcer_at_a_bpcer():
    from tools.liveness.stills import apcer_at_bpcer, auc

    live = np.array([True] * 10 + [False] * 4)
    score = np.array([*range(10, 20), 0, 1, 15, 25], float)
    # attacks 0 and 1 lose to all ten; 15 beats five (one tie, half); 25 beats all
    assert auc(score, live) == pytest.approx((10 + 10 + 4.5 + 0) / 40)
    assert auc(np.array([1.0, 0.0]), np.array([True, False])) == 1.0
    assert auc(np.array([np.nan, 0.0]), np.array([True, False])) == 0.0
    apcer, t = apcer_at_bpcer(score, live, 0.10)  # one of ten live may fall below: t = 11
    assert t == 11 and apcer == 0.5


def _tiny_nuaa(samples: Path, root: Path) -> Path:
    """A NUAA-layout folder: subject 0005's live frames and, as its 'photos', the committed printed frames."""
    (root / "ClientRaw" / "0005").mkdir(parents=True)
    (root / "ImposterRaw" / "0005").mkdir(parents=True)
    for p in sorted((samples / "nuaa" / "ClientRaw" / "0005").glob("*.jpg")):
        shutil.copy(p, root / "ClientRaw" / "0005" / p.name)
    for p in sorted((samples / "nuaa" / "ImposterRaw" / "0009").glob("*.jpg")):
        shutil.copy(p, root / "ImposterRaw" / "0005" / p.name.replace("0009_", "0005_", 1))
    return root


def test_training_script_fits_converts_and_writes_a_card_that_loads(
    samples, model_dir, tmp_path, monkeypatch, runtime
):
    """The mechanics only, on 20 frames: the shipped model was made by the same command on NUAA."""
    from edge.liveness.passive import PassiveClassifier
    from tools.liveness.train import main

    monkeypatch.setenv("FACEGATE_MODEL_DIR", str(model_dir))
    nuaa = _tiny_nuaa(samples, tmp_path / "nuaa")
    out = tmp_path / "m" / "liveness-test.int8.tflite"
    rc = main(
        [
            "--nuaa",
            str(nuaa),
            "--out",
            str(out),
            "--min-calibration-faces",
            "5",
            "--work",
            str(tmp_path / "work"),
        ]
    )
    assert rc == 0
    clf = PassiveClassifier(out, runtime=runtime)
    card = clf.card.raw
    assert (
        card["role"] == "liveness"
        and card["mode"] == "int8"
        and card["training"]["subjects"] == ["0005"]
    )
    assert card["training"]["held_out_subjects"] == list(TEST_SUBJECTS)
    assert card["operating_point"]["min_live_probability"] == 0.5  # one subject: none to hold out
    assert (
        card["training"]["backbone"]["name"] == "facenet-keras"
        and "ai-edge-litert" in card["parity"]
    )


def test_training_without_nuaa_frames_is_one_clear_error(tmp_path, capsys):
    from tools.liveness.train import main

    assert (
        main(
            [
                "--nuaa",
                str(tmp_path),
                "--out",
                str(tmp_path / "x.tflite"),
                "--work",
                str(tmp_path / "w"),
            ]
        )
        == ExitCode.DATA
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"tools.liveness.train: error: {tmp_path}: no NUAA frames (ClientRaw/<id>/*.jpg, ImposterRaw/<id>/*.jpg)"
    ]


def test_rotations_test_every_subject_three_times_on_models_that_never_saw_it():
    from collections import Counter

    from tools.liveness.rotate import SUBJECTS, rotations

    rots = rotations()
    assert len(rots) == 10
    for train, test in rots:
        assert len(train) == 7 and len(test) == 3
        assert set(train) | set(test) == set(SUBJECTS) and not set(train) & set(test)
    assert Counter(s for _, test in rots for s in test) == dict.fromkeys(SUBJECTS, 3)


def _synthetic_crops(n_per: int = 20) -> tuple[np.ndarray, Crops]:
    """Three subjects, each with a live and a photo recording; live frames sit higher on feature 0."""
    rng = np.random.default_rng(3)
    subject, live, clip, frame_no, feats = [], [], [], [], []
    for s in ("0001", "0002", "0003"):
        for is_live in (True, False):
            for i in range(n_per):
                subject.append(s)
                live.append(is_live)
                clip.append(f"{s}_{'live' if is_live else 'photo'}")
                frame_no.append(i)
                feats.append(rng.normal(size=4) + (1.5 if is_live else -1.5) * np.eye(4)[0])
    n = len(subject)
    data = Crops(
        np.zeros((n, 2, 2, 3), np.uint8),
        np.array(live),
        np.array(subject),
        np.array(clip),
        np.array(frame_no),
        np.array([""] * n),
    )
    return np.array(feats, np.float32), data


def test_a_subjects_held_out_scores_never_depend_on_its_own_labels():
    from dataclasses import replace

    from tools.liveness.train import Recipe, fit_head, held_out_logits

    feats, data = _synthetic_crops()
    r = Recipe(steps=200)
    before = held_out_logits(feats, data, r)
    own = data.subject == "0002"
    assert np.isfinite(before).all()
    assert np.allclose(before[own], fit_head(feats[~own], data.live[~own], r)(feats[own]))
    # 0002's labels inverted: its own scores stay, the others' (0002 trained their heads) move.
    flipped = replace(data, live=np.where(own, ~data.live, data.live))
    after = held_out_logits(feats, flipped, r)
    assert np.allclose(after[own], before[own])
    assert not np.allclose(after[~own], before[~own])


def test_operating_point_from_held_out_subjects_or_the_default_when_there_is_one_subject():
    from tools.liveness.train import Recipe, fit_head, fit_procedure

    feats, data = _synthetic_crops()
    _, op = fit_procedure(feats, data, Recipe(steps=200))
    assert 0.0 < op["min_live_probability"] < 1.0 and op["held_out_attempts"] == {
        "live": 12,
        "attack": 12,
    }
    assert op["held_out_bpcer"] <= 0.05 and "0001, 0002, 0003" in op["chosen_on"]
    head, op = fit_procedure(
        feats, data, Recipe(steps=200), validation=("0003",)
    )  # the replaced method
    fit = data.subject != "0003"
    assert np.allclose(head(feats), fit_head(feats[fit], data.live[fit], Recipe(steps=200))(feats))
    assert (
        op["held_out_attempts"] == {"live": 4, "attack": 4}
        and "of 0003, scored by a head not fitted on them" in op["chosen_on"]
    )
    one = data.select(data.subject == "0001")
    _, op = fit_procedure(feats[data.subject == "0001"], one, Recipe(steps=200))
    assert op["min_live_probability"] == 0.5 and "held_out_attempts" not in op


def test_rotate_metered_corrects_a_stressed_crop_with_the_device_loop():
    """--metered re-renders each test crop from the recorded one until the daemon's loop asks for no more."""
    from edge.config import ExposureConfig
    from edge.exposure import correction_stops, meter_face
    from tools.liveness.rotate import metered
    from tools.liveness.train import Recipe

    r = Recipe()
    crops = np.full((2, r.size, r.size, 3), 40, np.uint8)  # dark surroundings
    side = r.size / (1 + 2 * r.margin)  # the face box sits in the middle of its crop
    box = ((r.size - side) / 2,) * 2 + ((r.size + side) / 2,) * 2
    face = slice(int(box[0]) - 2, int(box[2]) + 3)  # the face fills it
    crops[0][face, face] = 118  # at the target as recorded
    crops[1][face, face] = 90  # a stop under
    out, comp = metered(crops, 2.0, r)  # a lamp: two stops over, face and all
    target = ExposureConfig().target_face_luma
    for picture in out:
        m = meter_face(picture, box)
        assert m is not None and abs(correction_stops(m, target)) < ExposureConfig().tolerance_stops
    assert -2.2 < comp[0] < -1.75 and -1.3 < comp[1] < -0.5
    same, none = metered(crops[:1], 0.0, r)
    assert none[0] == 0.0 and np.array_equal(same[0], crops[0])  # right as recorded: left alone
