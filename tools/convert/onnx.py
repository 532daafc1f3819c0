"""tools/convert/onnx: an ONNX face embedder (the PyTorch route) -> a TensorFlow SavedModel.

In: a ``.onnx`` file (``torch.onnx.export``) with one float32 image input, NCHW
``[1|N, 3, H, W]`` as PyTorch writes it (an NHWC ``[1|N, H, W, 3]`` input is kept as
it is), and one embedding output; ``--input-size H W`` must agree with its static dims.
Out: a temporary SavedModel directory (removed at exit) whose serving signature takes
NHWC ``[1, H, W, 3]`` float32, as the device feeds it, for load_converter's
"saved-model" branch to convert, calibrate and parity-check like any other source.

onnx2tf pins TensorFlow 2.19, which cannot share a venv with this tool's TensorFlow,
so it lives in its own venv (``make onnx-venv``) and runs as a command: the
executable named by $FACEGATE_ONNX2TF, else <repo>/.venv-onnx2tf/bin/onnx2tf.  That
venv's Python (onnx, onnxruntime) also reads the ONNX file first and computes reference
outputs; the SavedModel must reproduce them, with the input transposed NCHW -> NHWC,
before it is handed on.  The parity gate after this compares only the SavedModel with
the .tflite, so this is the one check that onnx2tf's layout rewrite kept the model.
"""

from __future__ import annotations

import atexit
import inspect
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge.text import first_line
from tools.convert import ROOT, ConvertError
from tools.convert.loading import import_tf

log = logging.getLogger(__name__)

ENV_VAR = "FACEGATE_ONNX2TF"
DEFAULT_ONNX2TF = ROOT / ".venv-onnx2tf" / "bin" / "onnx2tf"
# onnxruntime and TensorFlow run the same float32 graph, so they must agree to rounding;
# anything less means onnx2tf's layout rewrite changed what the model computes.
MIN_COSINE = 0.9999
# onnx2tf loads this from its working directory, or else downloads it from GitHub for any
# fixed-batch image input; we write our own (seeded uniform noise in [0, 1), its "norm"
# range) so a conversion never touches the network.
SAMPLE_DATA = "calibration_image_sample_data_20x128x128x3_float32.npy"

# Runs in the onnx2tf venv (python -I -c): checks the ONNX input against --input-size and
# saves onnxruntime's outputs on seeded NHWC noise.  Last stdout line: JSON, or {"error": ...}.
# edge is not importable there, so the probe carries edge.text.first_line's own source.
_PROBE = (
    inspect.getsource(first_line)
    + r"""
import json, sys

def probe(path, h, w, out):
    import numpy as np
    import onnx
    try:
        model = onnx.load(path, load_external_data=False)
        onnx.checker.check_model(path)
    except Exception as exc:
        return {"error": f"not a readable ONNX model: {first_line(exc)}"}
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    outputs = list(model.graph.output)
    if len(inputs) != 1:
        return {"error": f"{len(inputs)} inputs {[i.name for i in inputs]}; a face embedder takes one image"}
    if len(outputs) != 1:
        names = [o.name for o in outputs]
        return {"error": f"{len(outputs)} outputs {names}; tools/convert needs one embedding output"}
    inp = inputs[0]
    t = inp.type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        return {"error": f"input {inp.name!r} is {onnx.TensorProto.DataType.Name(t.elem_type)}, not FLOAT (float32)"}
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    if len(dims) == 4 and dims[1] == 3:
        layout, hw = "NCHW", dims[2:4]
    elif len(dims) == 4 and dims[3] == 3:
        layout, hw = "NHWC", dims[1:3]
    else:
        return {"error": f"input {inp.name!r} has shape {dims}, neither NCHW [N,3,H,W] nor NHWC [N,H,W,3]"}
    if any(isinstance(d, int) and d != want for d, want in zip(hw, (h, w))):
        return {"error": f"input {inp.name!r} is {hw[0]}x{hw[1]} ({layout} {dims}), not --input-size {h} {w}"}
    if isinstance(dims[0], int) and dims[0] != 1:
        return {"error": f"input {inp.name!r} has a fixed batch of {dims[0]}; export with batch 1 or a dynamic batch"}
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).normal(0.0, 1.0, (4, h, w, 3)).astype(np.float32)
        feed = x.transpose(0, 3, 1, 2) if layout == "NCHW" else x
        y = np.concatenate([sess.run(None, {inp.name: feed[i : i + 1]})[0] for i in range(len(x))])
    except Exception as exc:
        return {"error": f"onnxruntime cannot run it: {first_line(exc)}"}
    np.savez(out, x=x, y=y)
    from importlib.metadata import version

    external = sorted({e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"})
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)
    producer = f"{model.producer_name} {model.producer_version}".strip() or "unknown"
    return {"input": inp.name, "layout": layout, "shape": dims, "output": outputs[0].name, "opset": opset,
            "producer": producer, "onnx2tf": version("onnx2tf"), "external_data": external}

try:
    result = probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
except Exception as exc:
    result = {"error": f"{type(exc).__name__}: {first_line(exc)}"}
print(json.dumps(result))
"""
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NOISE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)")  # TF/absl C++ logging


def onnx2tf_command() -> Path:
    """The onnx2tf executable of the isolated venv: $FACEGATE_ONNX2TF or the repo's .venv-onnx2tf."""
    exe = Path(os.environ.get(ENV_VAR) or DEFAULT_ONNX2TF)
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise ConvertError(
            f"ONNX needs onnx2tf in its own venv: make onnx-venv (no executable {exe})"
        )
    return exe


def venv_python(exe: Path) -> Path:
    """The Python onnx2tf runs under: its script's shebang, else the python beside it."""
    try:
        with exe.open("rb") as f:
            first = f.readline(4096).decode("utf-8", "replace").strip()
    except OSError:
        first = ""
    if first.startswith("#!") and len(first.split()) == 1 and Path(first[2:]).is_file():
        return Path(first[2:])
    for name in ("python", "python3"):
        if (exe.parent / name).is_file():
            return exe.parent / name
    raise ConvertError(
        f"ONNX needs onnx2tf in its own venv: make onnx-venv (no Python found for {exe})"
    )


def _child_env(exe: Path) -> dict[str, str]:
    """This process's environment for the other venv: its bin/ first on PATH, nothing that bends its Python.

    onnx2tf runs ``onnxsim`` by name from PATH; without it, it skips simplification
    (and -ois with it) silently.  TF_USE_LEGACY_KERAS would give it Keras 2; it needs 3.
    """
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "TF_USE_LEGACY_KERAS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join([str(exe.parent), env.get("PATH", os.defpath)])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def _last_line(text: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line and not _NOISE.match(line)]
    return lines[-1] if lines else "no output"


def _failure(stdout: str, stderr: str) -> str:
    """onnx2tf's own last ERROR line (on stdout) if it printed one, else the last line of stderr."""
    lines = (_ANSI.sub("", line).strip() for line in (stdout or "").splitlines())
    errors = [line for line in lines if line.startswith("ERROR:")]
    return errors[-1][len("ERROR:") :].strip() if errors else _last_line(stderr)


def probe(exe: Path, path: Path, size: tuple[int, int], work: Path) -> dict[str, Any]:
    """Check the ONNX model in the onnx2tf venv and save onnxruntime's reference outputs to work/reference.npz."""
    h, w = size
    proc = subprocess.run(
        [
            str(venv_python(exe)),
            "-I",
            "-c",
            _PROBE,
            str(path.resolve()),
            str(h),
            str(w),
            str(work / "reference.npz"),
        ],
        check=False,  # the probe reports its own failures as JSON; a crash is read from stderr
        capture_output=True,
        text=True,
        cwd=work,
        env=_child_env(exe),
    )
    try:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ConvertError(
            f"{path}: cannot read the ONNX model in the onnx2tf venv: {_last_line(proc.stderr)}"
        ) from None
    if "error" in info:
        raise ConvertError(f"{path}: {info['error']}")
    return info


def run_onnx2tf(
    exe: Path, path: Path, info: dict[str, Any], size: tuple[int, int], work: Path
) -> Path:
    """onnx2tf -> work/saved_model, the input fixed to batch 1 and the card's H x W.

    onnx2tf rewrites its input file in place (onnxsim, op names), so it gets a copy:
    the user's file must stay the one whose sha256 the card records.
    """
    h, w = size
    shape = f"1,3,{h},{w}" if info["layout"] == "NCHW" else f"1,{h},{w},3"
    np.save(
        work / SAMPLE_DATA, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)
    )
    model = work / "model" / "model.onnx"
    model.parent.mkdir()
    shutil.copyfile(path, model)
    for rel in info.get("external_data", []):  # weights stored beside the .onnx (models > 2 GB)
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ConvertError(f"{path}: external data {rel!r} lies outside the model's folder")
        (model.parent / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path.parent / rel, model.parent / rel)
    out = work / "saved_model"
    cmd = [
        str(exe),
        "-i",
        str(model),
        "-o",
        str(out),
        "-osd",
        "-ois",
        f"{info['input']}:{shape}",
        "-n",
    ]
    if info["layout"] == "NHWC":
        cmd += ["-kat", info["input"]]  # already the device's layout: no transpose
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(
        cmd, check=False, capture_output=True, text=True, cwd=work, env=_child_env(exe)
    )  # its exit status is turned into a ConvertError below
    if proc.returncode != 0:
        raise ConvertError(
            f"{path}: onnx2tf failed (exit {proc.returncode}): {_failure(proc.stdout, proc.stderr)}"
        )
    if not (out / "saved_model.pb").is_file():
        raise ConvertError(
            f"{path}: onnx2tf wrote no SavedModel: {_failure(proc.stdout, proc.stderr)}"
        )
    return out


def check_saved_model(saved: Path, reference: Path, size: tuple[int, int], source: Path) -> float:
    """Refuse the SavedModel unless it takes NHWC [1,H,W,3] float32 and reproduces onnxruntime; min cosine."""
    tf = import_tf()
    h, w = size
    loaded = tf.saved_model.load(str(saved))
    sigs = list(loaded.signatures)
    if not sigs:
        raise ConvertError(f"{source}: onnx2tf's SavedModel has no signatures")
    sig = loaded.signatures["serving_default" if "serving_default" in sigs else sigs[0]]
    ((in_key, spec),) = sig.structured_input_signature[1].items()
    shape = spec.shape.as_list()
    if (
        spec.dtype != tf.float32
        or len(shape) != 4
        or shape[0] not in (1, None)
        or shape[1:] != [h, w, 3]
    ):
        raise ConvertError(
            f"{source}: onnx2tf made input {shape} {spec.dtype.name}, not NHWC [1, {h}, {w}, 3] float32"
        )
    out_key = next(iter(sig.structured_outputs))
    ref = np.load(reference)
    x, want = ref["x"], ref["y"].reshape(len(ref["x"]), -1)
    got = np.concatenate(
        [np.asarray(sig(**{in_key: tf.constant(x[i : i + 1])})[out_key]) for i in range(len(x))]
    )
    got = got.reshape(len(x), -1)
    if got.shape != want.shape:
        raise ConvertError(
            f"{source}: onnx2tf's output has {got.shape[1]} values per image, the ONNX model {want.shape[1]}"
        )
    cos = np.sum(got * want, axis=1) / np.maximum(
        np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1), 1e-12
    )
    worst = float(cos.min())
    if not worst >= MIN_COSINE:
        raise ConvertError(
            f"{source}: onnx2tf's SavedModel does not reproduce the ONNX model (min cosine {worst:.6f} "
            f"< {MIN_COSINE} on NHWC noise); nothing written"
        )
    log.info(
        "onnx2tf SavedModel matches onnxruntime: min cosine %.7f, max |diff| %.2e",
        worst,
        float(np.abs(got - want).max()),
    )
    return worst


def to_saved_model(path: Path, size: tuple[int, int]) -> Path:
    """The ONNX model at ``path`` as a checked NHWC SavedModel in a temporary directory (removed at exit)."""
    exe = onnx2tf_command()
    if not path.is_file():
        raise ConvertError(f"{path}: an ONNX model is a single .onnx file")
    work = Path(tempfile.mkdtemp(prefix="facegate-onnx-"))
    atexit.register(shutil.rmtree, work, True)
    info = probe(exe, path, size, work)
    log.info(
        "ONNX %s: input %r %s %s, output %r, opset %s, from %r; onnx2tf %s",
        path.name,
        info["input"],
        info["layout"],
        info["shape"],
        info["output"],
        info["opset"],
        info["producer"],
        info["onnx2tf"],
    )
    saved = run_onnx2tf(exe, path, info, size, work)
    check_saved_model(saved, work / "reference.npz", size, path)
    return saved
