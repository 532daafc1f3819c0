"""tools/convert on an ONNX model (the PyTorch route), run as a user runs it.

onnx2tf lives in its own venv (`make onnx-venv`, .venv-onnx2tf): it pins TensorFlow
2.19, which cannot share a venv with the main one.  Its absence fails these tests
rather than skipping them, so CI without that install step goes red.  The tiny
ONNX model is built with that venv's ``onnx`` (the main venv has none), and the
converted .tflite is checked against onnxruntime there, NCHW in, NHWC on the device.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from clitools import ROOT, convert, error_line

from edge.cards import card_path_for, load_card
from edge.errors import ExitCode

TINY = ["--input-size", "32", "32", "--embedding-size", "16"]
MISSING = "ONNX needs onnx2tf in its own venv: make onnx-venv"

# Runs in the onnx2tf venv: onnxruntime on NHWC inputs transposed to the model's NCHW.
ORT_RUN = """
import sys, numpy as np, onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
y = np.concatenate([sess.run(None, {"input": x[i : i + 1].transpose(0, 3, 1, 2)})[0] for i in range(len(x))])
np.save(sys.argv[3], y)
"""


def onnx2tf_exe() -> Path:
    return Path(os.environ.get("FACEGATE_ONNX2TF") or ROOT / ".venv-onnx2tf" / "bin" / "onnx2tf")


@pytest.fixture(scope="session")
def onnx_python() -> Path:
    """The onnx2tf venv's Python; its absence is an install error, not a skip."""
    exe = onnx2tf_exe()
    python = exe.parent / "python"
    if not (exe.is_file() and python.is_file()):
        pytest.fail(f"onnx2tf venv missing ({exe}); run `make onnx-venv` first", pytrace=False)
    return python


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, onnx_python) -> Path:
    out = tmp_path_factory.mktemp("tiny_onnx")
    proc = subprocess.run(
        [str(onnx_python), str(ROOT / "tests/tools/tiny_onnx.py"), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "tiny.onnx"


@pytest.fixture(scope="module")
def converted(tiny_onnx, tmp_path_factory, model_dir, samples) -> tuple[Path, str]:
    """tiny.onnx -> float32 .tflite with the parity gate on the committed faces; (output, source sha256 before)."""
    before = hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()
    out = tmp_path_factory.mktemp("onnx_out") / "tiny.float32.tflite"
    p = convert(
        str(tiny_onnx),
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
    return out, before


def test_onnx_converts_to_an_nhwc_model_with_a_card(converted):
    out, before = converted
    card = load_card(out)  # sha256 verified against the card
    assert card.input_size == (32, 32) and card.embedding_size == 16
    raw = json.loads(card_path_for(out).read_text())
    assert raw["source"] == {"path": "tiny.onnx", "format": "onnx", "sha256": before}
    assert raw["mode"] == "float32" and raw["input"]["layout"] == "NHWC"
    runtimes = raw["converter"]["runtimes"]
    assert set(runtimes) == {"ai-edge-litert", "tflite-runtime"}
    for name, info in runtimes.items():
        assert info["ok"], (name, info)
        assert info["input"] == [1, 32, 32, 3] and info["output"] == [1, 16], (name, info)


def test_onnx_parity_gate_passes_in_both_runtimes(converted):
    raw = json.loads(card_path_for(converted[0]).read_text())
    assert set(raw["parity"]) == {"ai-edge-litert", "tflite-runtime"}
    for runtime, parity in raw["parity"].items():
        assert parity["faces"] == 8
        assert parity["min_cosine"] > 0.999, (runtime, parity)  # float32 is the source, to rounding


def test_tflite_on_nhwc_matches_onnxruntime_on_nchw(converted, tiny_onnx, onnx_python, tmp_path):
    """The parity gate compares the SavedModel with the .tflite; this ties the .tflite to the ONNX model itself."""
    from edge.runtime import Model

    x = np.random.default_rng(1).normal(0, 1, (4, 32, 32, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            str(onnx_python),
            "-c",
            ORT_RUN,
            str(tiny_onnx),
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    want = np.load(tmp_path / "y.npy")
    model = Model(converted[0], runtime="ai-edge-litert")
    got = np.concatenate([model.run(x[i : i + 1])[0] for i in range(len(x))])
    cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() > 0.999, cos
    # A transposed H/W (or channels read as rows) would not survive a non-symmetric random input.
    wrong = np.concatenate(
        [
            model.run(np.ascontiguousarray(x[i : i + 1].transpose(0, 2, 1, 3)))[0]
            for i in range(len(x))
        ]
    )
    assert np.abs(wrong - want).max() > 1e-3


def test_onnx_source_file_is_left_untouched(converted, tiny_onnx):
    """onnx2tf rewrites its input in place; the tool must hand it a copy."""
    assert hashlib.sha256(tiny_onnx.read_bytes()).hexdigest() == converted[1]


def test_missing_onnx2tf_is_one_line_and_exit_4(tiny_onnx, tmp_path):
    out = tmp_path / "out" / "x.tflite"
    p = convert(
        str(tiny_onnx),
        *TINY,
        "--out",
        str(out),
        env={"FACEGATE_ONNX2TF": str(tmp_path / "no-venv" / "onnx2tf")},
    )
    assert p.returncode == ExitCode.MODEL == 4
    assert MISSING in error_line(p)
    assert list((tmp_path / "out").iterdir()) == []


def test_corrupt_onnx_is_one_line(tiny_onnx, tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(tiny_onnx.read_bytes()[:700])  # cut inside a weight
    p = convert(str(bad), *TINY, "--out", str(tmp_path / "out" / "x.tflite"))
    assert p.returncode == ExitCode.MODEL
    assert "corrupt.onnx: not a readable ONNX model" in error_line(p)
    assert list((tmp_path / "out").iterdir()) == []


def test_input_size_must_match_the_onnx_input(tiny_onnx, tmp_path):
    p = convert(
        str(tiny_onnx),
        "--input-size",
        "112",
        "112",
        "--embedding-size",
        "16",
        "--out",
        str(tmp_path / "x.tflite"),
    )
    assert p.returncode == ExitCode.MODEL
    assert "is 32x32 (NCHW [1, 3, 32, 32]), not --input-size 112 112" in error_line(p)


def test_onnx2tf_failure_is_its_last_stderr_line(tiny_onnx, onnx_python, tmp_path):
    """A failing onnx2tf (here a stand-in run by the venv's Python) gives one line, not its traceback."""
    fake = tmp_path / "bin" / "onnx2tf"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{onnx_python}\nimport sys\nprint('Traceback (most recent call last):', file=sys.stderr)\n"
        "print('ValueError: Frobnicate OP is not supported', file=sys.stderr)\nsys.exit(1)\n"
    )
    fake.chmod(0o755)
    p = convert(
        str(tiny_onnx),
        *TINY,
        "--out",
        str(tmp_path / "out" / "x.tflite"),
        env={"FACEGATE_ONNX2TF": str(fake)},
    )
    assert p.returncode == ExitCode.MODEL
    assert "onnx2tf failed (exit 1): ValueError: Frobnicate OP is not supported" in error_line(
        p
    )  # no Traceback either
