"""tools/convert on real (tiny) models in every format, run as a user runs it.

TensorFlow must not share a process with the TFLite runtimes the rest of the
suite loads, so both the model building and the converter run as commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import ROOT, convert, error_line

from edge.cards import card_path_for, load_card
from edge.errors import ExitCode

FORMATS = {
    "keras-h5": "tiny.h5",
    "keras": "tiny.keras",
    "saved-model": "tiny_saved",
    "frozen-graph": "tiny.pb",
}
TINY = ["--input-size", "32", "32", "--embedding-size", "16"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/tools/tiny_models.py"), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_converts_and_matches_its_source(tiny, tmp_path, model_dir, samples, fmt):
    out = tmp_path / f"{fmt}.tflite"
    p = convert(
        str(tiny / FORMATS[fmt]),
        *TINY,
        "--out",
        str(out),
        "--holdout",
        str(samples / "lfw"),
        "--min-holdout-faces",
        "5",
        model_dir=model_dir,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    card = load_card(out)  # sha256 verified against the card
    assert card.input_size == (32, 32) and card.embedding_size == 16
    raw = json.loads(card_path_for(out).read_text())
    assert raw["source"]["format"] == fmt and raw["mode"] == "float32"
    assert set(raw["converter"]["runtimes"]) == {"ai-edge-litert", "tflite-runtime"}
    for runtime, parity in raw["parity"].items():
        assert parity["faces"] == 8
        assert parity["min_cosine"] > 0.999, (runtime, parity)  # float32 is the source, to rounding
    report = json.loads(out.with_name(out.name + ".report.json").read_text())
    assert (
        report["size_bytes"] == out.stat().st_size
        and "source_tensorflow_per_face_batched" in report["latency_ms"]
    )


@pytest.mark.parametrize("mode", ["float16", "dynamic-int8", "int8", "int8-io"])
def test_quantised_modes_load_in_both_runtimes(tiny, tmp_path, model_dir, samples, mode):
    out = tmp_path / f"{mode}.tflite"
    p = convert(
        str(tiny / "tiny.h5"),
        *TINY,
        "--mode",
        mode,
        "--out",
        str(out),
        "--calibration",
        str(samples / "lfw"),
        "--min-calibration-faces",
        "5",
        "--holdout",
        str(samples / "lfw"),
        "--min-holdout-faces",
        "5",
        "--min-mean-cosine",
        "0.5",
        "--min-p1-cosine",
        "0.0",
        model_dir=model_dir,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    raw = json.loads(card_path_for(out).read_text())
    assert raw["mode"] == mode
    assert all(
        info["ok"] for info in raw["converter"]["runtimes"].values()
    )  # incl. FULLY_CONNECTED for 2.14
    load_card(out)


def test_int8_needs_enough_calibration_faces(tiny, tmp_path, model_dir, samples):
    out = tmp_path / "x.tflite"
    p = convert(
        str(tiny / "tiny.h5"),
        *TINY,
        "--mode",
        "int8",
        "--out",
        str(out),
        "--calibration",
        str(samples / "lfw"),
        "--holdout",
        str(samples / "lfw"),
        "--min-holdout-faces",
        "5",
        model_dir=model_dir,
    )
    assert p.returncode == ExitCode.MODEL
    assert "only 8 usable faces for calibration" in error_line(
        p
    ) and "need at least 100" in error_line(p)
    assert list(tmp_path.iterdir()) == []


def test_parity_gate_failure_writes_nothing(tiny, tmp_path, model_dir, samples):
    out = tmp_path / "x.tflite"
    p = convert(
        str(tiny / "tiny.h5"),
        *TINY,
        "--out",
        str(out),
        "--holdout",
        str(samples / "lfw"),
        "--min-holdout-faces",
        "5",
        "--min-mean-cosine",
        "1.01",
        model_dir=model_dir,
    )
    assert p.returncode == ExitCode.PARITY
    assert "fails the parity gate, nothing written" in error_line(p)
    assert list(tmp_path.iterdir()) == []


def test_quantised_mode_without_held_out_faces_is_refused(tiny, tmp_path):
    p = convert(
        str(tiny / "tiny.h5"), *TINY, "--mode", "float16", "--out", str(tmp_path / "x.tflite")
    )
    assert p.returncode == ExitCode.MODEL and "parity gate needs held-out faces" in error_line(p)


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda t, o: ["/nonexistent/model.h5", *TINY], "no such file"),
        (lambda t, o: [str(t / "names.npy"), *TINY], "unknown model format '.npy'"),
        (
            lambda t, o: [str(t / "tiny.pb"), *TINY, "--input-name", "image_batch"],
            "--input-name: no tensor 'image_batch'",
        ),
        (lambda t, o: [str(t / "not_embedding.h5"), *TINY], "is not one embedding"),
        (
            lambda t, o: [str(t / "tiny.h5"), "--input-size", "32", "32"],
            "give --input-size H W and --embedding-size N",
        ),
        (
            lambda t, o: [str(t / "tiny.h5"), *TINY, "--out", str(o / "file" / "x.tflite")],
            "cannot write there",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tiny, tmp_path, make_args, message):
    (tmp_path / "file").write_text("a file, not a directory")
    args = make_args(tiny, tmp_path)
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out" / "x.tflite")]
    p = convert(*args)
    assert p.returncode != 0
    assert message in error_line(p)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


LIVENESS = [
    "--task",
    "liveness",
    "--input-size",
    "32",
    "32",
    "--normalization",
    "fixed:127.5:127.5",
]


def test_liveness_classifier_converts_with_a_liveness_card(tiny, tmp_path, model_dir, samples):
    out = tmp_path / "live.float32.tflite"
    p = convert(
        str(tiny / "liveness.h5"),
        *LIVENESS,
        "--out",
        str(out),
        "--holdout",
        str(samples / "nuaa"),
        "--min-holdout-faces",
        "5",
        model_dir=model_dir,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert (
        "live probability vs source" in p.stdout and "AUC" in p.stdout
    )  # NUAA layout gives the labels
    card = load_card(out)
    assert card.role == "liveness" and card.embedding_size == 1 and not card.flip_average
    raw = json.loads(card_path_for(out).read_text())
    assert (
        raw["output"] == {"size": 1, "kind": "logit", "positive": "live"} and "embedding" not in raw
    )
    assert all(info["output"] == [1, 1] for info in raw["converter"]["runtimes"].values())
    for runtime, parity in raw["parity"].items():
        assert parity["faces"] == 50 and parity["verdict_flips"] == 0.0, (runtime, parity)
        assert parity["max_probability_diff"] < 1e-4 and parity["converted_auc"] == pytest.approx(
            parity["source_auc"], abs=1e-3
        )
    report = json.loads(out.with_name(out.name + ".report.json").read_text())
    assert report["evaluation"]["live"] == 40 and report["evaluation"]["attack"] == 10


# convert() from Python, as the liveness trainer calls it: image lists, not folders.
API_INT8 = """
import json, sys
from pathlib import Path
from tools.convert.build import convert
from tools.convert.holdout import Evaluation
from tools.convert.source import Source

tiny, nuaa, out = (Path(a) for a in sys.argv[1:])
spec = {"task": "liveness", "input_size": [32, 32], "normalization": {"kind": "fixed", "mean": 127.5, "std": 127.5}}
src = Source(tiny / "liveness.h5", "keras-h5", "live", "0" * 64, spec)
train = sorted((nuaa / "ClientRaw").glob("000[15]/*.jpg"))  # subjects 0001, 0005
held = sorted(nuaa.glob("*Raw/0009/*.jpg"))  # subject 0009, live and printed
labels = [int(p.parts[-3] == "ClientRaw") for p in held]
report = convert(src, out, mode="int8", calibration=train, min_calibration_faces=5,
                 evaluation=Evaluation(held, labels=labels), min_holdout_faces=5)
print(json.dumps(report.card["report_data"]))
"""


def test_liveness_int8_from_python_with_image_lists(tiny, tmp_path, model_dir, samples):
    out = tmp_path / "live.int8.tflite"
    p = subprocess.run(
        [sys.executable, "-c", API_INT8, str(tiny), str(samples / "nuaa"), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "FACEGATE_MODEL_DIR": str(model_dir)},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["calibration"]["faces"] == 25  # only the listed training frames
    assert report["evaluation"] == {
        "images": 25,
        "faces": 25,
        "no_face": 0,
        "pairs": 0,
        "live": 15,
        "attack": 10,
    }
    card = load_card(out)
    assert card.role == "liveness" and card.mode == "int8"
    raw = json.loads(card_path_for(out).read_text())
    assert raw["converter"]["calibration"].startswith("25 listed images")
    assert set(raw["converter"]["runtimes"]) == {
        "ai-edge-litert",
        "tflite-runtime",
    }  # int8 loads in 2.14 too
    for parity in raw["parity"].values():
        assert (
            parity["p99_probability_diff"] <= 0.05
            and parity["verdict_flips"] <= 0.01
            and parity["source_auc"] is not None
        )


def test_liveness_model_with_two_outputs_is_refused(tiny, tmp_path):
    p = convert(str(tiny / "liveness_two.h5"), *LIVENESS, "--out", str(tmp_path / "x.tflite"))
    assert p.returncode == ExitCode.MODEL
    assert "liveness_two.h5: output shape [1, 2] is not one liveness logit [1, 1]" in error_line(p)
    assert list(tmp_path.iterdir()) == []


def test_liveness_parity_gate_failure_writes_nothing(tiny, tmp_path, model_dir, samples):
    p = convert(
        str(tiny / "liveness.h5"),
        *LIVENESS,
        "--out",
        str(tmp_path / "x.tflite"),
        "--holdout",
        str(samples / "nuaa"),
        "--min-holdout-faces",
        "5",
        "--max-probability-diff",
        "-1",
        model_dir=model_dir,
    )
    assert p.returncode == ExitCode.PARITY
    assert "fails the parity gate, nothing written" in error_line(
        p
    ) and "live-probability difference" in error_line(p)
    assert list(tmp_path.iterdir()) == []


def test_every_source_format_has_a_loader():
    from tools.convert import loading
    from tools.convert.source import FORMATS

    assert set(loading._LOADERS) | set(loading._TO_SAVED_MODEL) == set(FORMATS)
