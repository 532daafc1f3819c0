"""tools/convert: a face-embedding or liveness model -> a TFLite model the device runs, with its model card.

In: a model (Keras 2 .h5, Keras .keras, SavedModel directory, TensorFlow frozen
graph .pb, ONNX .onnx through onnx2tf in its own venv), or a name from models/manifest.yaml (fetched from its wheel).
Out: ``NAME.MODE.tflite`` and ``NAME.MODE.tflite.card.json`` beside it, both
written atomically, after the .tflite has loaded in every device runtime.

TensorFlow is imported only here (workstation side); the device package
``edge`` never imports it.  Calibration images go through edge's own detector
and crop, so int8 sees exactly what the device will feed it.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import FacegateError, ModelError, ParityError
from edge.models import CARD_SCHEMA, atomic_write_bytes, card_path_for, sha256_file, write_card

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MODES = ("float32", "float16", "dynamic-int8", "int8", "int8-io")
FORMATS = ("keras-h5", "keras", "saved-model", "frozen-graph", "onnx")
TASKS = ("embedding", "liveness")
LIVENESS_OUTPUT = {"size": 1, "kind": "logit", "positive": "live"}


class ConvertError(FacegateError, ValueError):
    """The source model cannot be converted as asked."""

    exit_code = ModelError.exit_code


@dataclass(frozen=True)
class Source:
    """A model to convert and what the device must know to feed it.

    ``spec["task"]`` is "embedding" (the default; needs ``embedding_size``) or
    "liveness" (one logit, positive = live face).
    """

    path: Path
    format: str
    name: str
    sha256: str
    spec: dict[str, Any]
    tensors: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> str:
        task = self.spec.get("task", "embedding")
        if task not in TASKS:
            raise ConvertError(
                f"{self.path}: spec task: must be one of {', '.join(TASKS)}, got {task!r}"
            )
        return task


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved-model"
        raise ConvertError(f"{path}: a directory without saved_model.pb is not a SavedModel")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return "keras-h5"
    if suffix == ".keras":
        return "keras"
    if suffix == ".pb":
        return "frozen-graph"
    if suffix == ".onnx":
        return "onnx"
    raise ConvertError(
        f"{path}: unknown model format {suffix or '(no suffix)'!r}; expected .h5, .keras, .pb, .onnx or a SavedModel directory"
    )


def _tf():
    """Import TensorFlow with Keras 2 as tf.keras (FaceNet's .h5 needs it)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise ConvertError(
            "tools/convert needs TensorFlow: pip install 'facegate[convert]'"
        ) from None
    return tf


def _frozen_graph_function(tf: Any, path: Path, input_name: str | None, output_name: str | None):
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise ConvertError(f"{path}: not a TensorFlow GraphDef: {exc}") from None
    nodes = {n.name: n for n in graph_def.node}
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
    sinks = [
        n.name
        for n in graph_def.node
        if n.name not in consumed and n.op not in ("Const", "NoOp", "Placeholder")
    ]
    if input_name is None:
        float_inputs = [p for p in placeholders if nodes[p].attr["dtype"].type == 1]  # DT_FLOAT
        if len(float_inputs) != 1:
            raise ConvertError(
                f"{path}: cannot tell the input tensor among {placeholders}; give --input-name"
            )
        input_name = float_inputs[0]
    if output_name is None:
        if len(sinks) != 1:
            raise ConvertError(
                f"{path}: cannot tell the output tensor among {sinks[:8]}; give --output-name"
            )
        output_name = sinks[0]
    in_node, out_node = input_name.split(":")[0], output_name.split(":")[0]
    for what, node in (("--input-name", in_node), ("--output-name", out_node)):
        if node not in nodes:
            close = [n for n in nodes if node.lower() in n.lower()][:5]
            raise ConvertError(
                f"{path}: {what}: no tensor {node!r} in the graph"
                + (f" (similar: {close})" if close else "")
            )
    extra = [p for p in placeholders if p != in_node]

    def _import():
        # Other placeholders (FaceNet's phase_train) are fed constant False.
        input_map = {
            f"{p}:0": tf.constant(False) for p in extra if nodes[p].attr["dtype"].type == 10
        }
        tf.compat.v1.import_graph_def(graph_def, input_map=input_map, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    g = wrapped.graph
    try:
        fn = wrapped.prune(g.as_graph_element(f"{in_node}:0"), g.as_graph_element(f"{out_node}:0"))
    except (KeyError, ValueError) as exc:
        raise ConvertError(
            f"{path}: cannot cut the graph from {in_node} to {out_node}: {exc}"
        ) from None
    return fn, wrapped


def load_converter(
    src: Source, input_size: tuple[int, int]
) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """(TFLiteConverter, a callable that runs the source model on a float batch)."""
    tf = _tf()
    h, w = input_size
    fmt = src.format
    try:
        if fmt == "keras-h5":
            import tf_keras

            model = tf_keras.models.load_model(str(src.path), compile=False)
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            return converter, lambda x: np.asarray(model(x, training=False))
        if fmt == "keras":
            import keras

            model = keras.saving.load_model(str(src.path), compile=False)
            # Keras 3 models convert reliably only through a SavedModel export.
            exported = Path(tempfile.mkdtemp(prefix="facegate-keras-"))
            atexit.register(shutil.rmtree, exported, True)
            model.export(str(exported / "saved"), format="tf_saved_model", verbose=False)
            src = Source(
                exported / "saved", "saved-model", src.name, src.sha256, src.spec, src.tensors
            )
            fmt = "saved-model"
        if fmt == "onnx":
            from tools.convert.onnx import to_saved_model

            # onnx2tf (own venv, own TensorFlow) gives an NHWC SavedModel, checked against onnxruntime.
            src = Source(
                to_saved_model(src.path, (h, w)), "saved-model", src.name, src.sha256, src.spec, {}
            )
            fmt = "saved-model"
        if fmt == "saved-model":
            loaded = tf.saved_model.load(str(src.path))
            sigs = list(loaded.signatures)
            if not sigs:
                raise ConvertError(f"{src.path}: SavedModel has no signatures")
            sig = loaded.signatures[
                src.tensors.get(
                    "signature", "serving_default" if "serving_default" in sigs else sigs[0]
                )
            ]
            in_key = list(sig.structured_input_signature[1])[0]
            out_key = src.tensors.get("output") or list(sig.structured_outputs)[0]
            fn = tf.function(
                lambda x: sig(**{in_key: x})[out_key],
                input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32)],
            )
            concrete = fn.get_concrete_function()
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)
            return converter, lambda x: np.asarray(sig(**{in_key: tf.constant(x)})[out_key])
        if fmt == "frozen-graph":
            fn, keep = _frozen_graph_function(
                tf, src.path, src.tensors.get("input"), src.tensors.get("output")
            )
            fixed = tf.function(
                lambda x: fn(x), input_signature=[tf.TensorSpec([1, h, w, 3], tf.float32)]
            )
            concrete = fixed.get_concrete_function()
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], keep)
            return converter, lambda x: np.asarray(fn(tf.constant(x)))
    except ConvertError:
        raise
    except (OSError, ValueError, TypeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConvertError(f"{src.path}: cannot load as {fmt}: {first}") from None
    raise ConvertError(f"{src.path}: unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def configure(
    converter: Any, mode: str, representative: Callable[[], Iterator[list[np.ndarray]]] | None
) -> None:
    tf = _tf()
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic-int8":
        # TF 2.21 quantises dense layers per channel into FULLY_CONNECTED v12,
        # which tflite-runtime 2.14 cannot load; per-tensor keeps v<=11.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    elif mode in ("int8", "int8-io"):
        if representative is None:
            raise ConvertError(f"mode {mode} needs calibration images (--calibration DIR)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        if mode == "int8-io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    else:
        raise ConvertError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")


def _devrun(*args: str) -> dict[str, Any]:
    """Run a tools.convert.devrun step in a clean child process; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "tools.convert.devrun", *args],
        stdout=subprocess.PIPE,
        stderr=None if log.isEnabledFor(logging.INFO) else subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        err = (proc.stderr or "").strip().splitlines() or ["no output"]
        raise ConvertError(f"device step {args[0]} crashed: {err[-1]}") from None


def device_check(path: Path) -> dict[str, dict[str, Any]]:
    """Load and run the model in every device runtime (each in a clean process); refuse it if any fails."""
    from edge.runtime import RUNTIMES

    result: dict[str, dict[str, Any]] = {}
    for name in RUNTIMES:
        info = _devrun("check", str(path), name)
        if not info["ok"]:
            if (
                "not usable here" in info["error"]
                and name == "tflite-runtime"
                and sys.version_info >= (3, 12)
            ):
                result[name] = {
                    "ok": False,
                    "skipped": "tflite-runtime does not exist for Python >= 3.12",
                }
                continue
            raise ConvertError(f"converted model fails in {name}: {info['error']}")
        if not info["finite"]:
            raise ConvertError(f"converted model gives non-finite output in {name}")
        result[name] = info
    return result


def build_key(src: Source, mode: str, extra: dict[str, Any]) -> str:
    """A hash of everything that determines the output, to reuse a cached conversion."""
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    blob = json.dumps(
        {"source": src.sha256, "mode": mode, "spec": src.spec, "extra": extra, "code": code},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def up_to_date(out: Path, key: str) -> bool:
    card = card_path_for(out)
    if not (out.is_file() and card.is_file()):
        return False
    try:
        raw = json.loads(card.read_text())
        return raw.get("build_key") == key and raw.get("sha256") == sha256_file(out)
    except (OSError, ValueError):
        return False


def make_card(
    src: Source, mode: str, out_sha: str, size: int, extra: dict[str, Any]
) -> dict[str, Any]:
    tf = _tf()
    spec = src.spec
    if src.task == "liveness":
        role, output = "liveness", {"flip_average": False, "output": dict(LIVENESS_OUTPUT)}
    else:
        role, output = (
            "embedder",
            {
                "flip_average": bool(spec.get("flip_average", True)),
                "embedding": {
                    "size": int(spec["embedding_size"]),
                    "metric": "cosine",
                    "l2_normalize": True,
                },
                "suggested_min_cosine_similarity": spec.get("suggested_min_cosine_similarity"),
            },
        )
    return {
        "schema": CARD_SCHEMA,
        "name": src.name,
        "role": role,
        "file": None,  # filled by the caller
        "sha256": out_sha,
        "size_bytes": size,
        "mode": mode,
        "input": {
            "size": list(spec["input_size"]),
            "color": spec.get("color", "RGB"),
            "normalization": spec.get("normalization", {"kind": "prewhiten"}),
            "layout": "NHWC",
        },
        "crop": spec.get("crop", {"method": "landmarks", "margin": 0.0, "rotate": True}),
        **output,
        "source": {"path": str(src.path.name), "format": src.format, "sha256": src.sha256},
        "converter": {
            "tool": "facegate tools/convert",
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
            **extra,
        },
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Evaluation:
    """Held-out faces for the parity gate: images, and optionally LFW-format pairs over them
    (an embedder) or labels, 1 live / 0 attack per image (a liveness model, for AUC)."""

    images: list[Path]
    pairs: list[Any] | None = None  # tools.lfw.Pair
    labels: list[int] | None = None


@dataclass
class Report:
    out: Path
    converted: bool
    card: dict[str, Any] = field(default_factory=dict)


def _spec_file(tmp: Path, spec: dict[str, Any]) -> Path:
    p = tmp / "spec.json"
    p.write_text(json.dumps(spec))
    return p


def prepare_crops(
    images: list[Path], spec_file: Path, out: Path, *, detector: str, model_dir: Path | None
) -> dict[str, Any]:
    """Detect and crop faces as the device does (edge/, in a child process)."""
    listing = out.with_suffix(".txt")
    listing.write_text("\n".join(str(p) for p in images))
    args = ["crops", str(spec_file), str(out), "--list", str(listing), "--detector", detector]
    if model_dir:
        args += ["--model-dir", str(model_dir)]
    info = _devrun(*args)
    data = np.load(out)
    info["crops"] = data["crops"]
    info["paths"] = [Path(p) for p in data["paths"]]
    return info


def _representative(crops: np.ndarray, card: Any) -> Callable[[], Iterator[list[np.ndarray]]]:
    """TFLite's representative dataset: the calibration faces, normalised as the device will."""
    from edge.embed import normalize

    def batches() -> Iterator[list[np.ndarray]]:
        for c in crops:
            yield [normalize(c, card)]

    return batches


def calibration_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConvertError(f"{folder}: calibration folder not found")
    images = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp")
    )
    if not images:
        raise ConvertError(f"{folder}: no images (.jpg, .png, .bmp) in the calibration folder")
    return images


def _is_folder(calibration: Path | str | Sequence[Path | str]) -> bool:
    return isinstance(calibration, (str, os.PathLike))


def _calibration_name(calibration: Path | str | Sequence[Path | str]) -> str:
    """The calibration folder, or a digest of an explicit image list, for messages and the build key.

    A list lets a trainer calibrate on exactly its training frames, so held-out subjects never leak in.
    """
    if _is_folder(calibration):
        return str(calibration)
    digest = hashlib.sha256("\n".join(map(str, calibration)).encode()).hexdigest()[:16]
    return f"{len(calibration)} listed images (sha256 {digest})"


def convert(
    src: Source,
    out: Path,
    *,
    mode: str = "float32",
    calibration: Path | Sequence[Path] | None = None,
    min_calibration_faces: int = 100,
    max_calibration_faces: int = 500,
    evaluation: Evaluation | None = None,
    min_holdout_faces: int = 50,
    bounds: Any = None,
    detector: str = "blazeface-short",
    model_dir: Path | None = None,
    force: bool = False,
) -> Report:
    """Convert ``src`` to ``out`` (+ card + report); refuse it if it fails the device or parity checks.

    ``calibration`` is a folder or a list of images.  Nothing is written under
    ``out`` unless every check passed; all files are written atomically, the card last.
    """
    from tools.convert.devrun import _card_from_spec, embed_crops, run_crops
    from tools.convert.parity import Bounds, PairSet, compare, compare_liveness

    bounds = bounds or Bounds()
    if mode not in MODES:
        raise ConvertError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    liveness = src.task == "liveness"
    if (
        evaluation is not None
        and evaluation.labels is not None
        and len(evaluation.labels) != len(evaluation.images)
    ):
        raise ConvertError(
            f"Evaluation.labels: {len(evaluation.labels)} labels for {len(evaluation.images)} images"
        )
    calib_name = _calibration_name(calibration) if calibration is not None else None
    extra = {
        "calibration": calib_name,
        "evaluation_images": len(evaluation.images) if evaluation else 0,
        "bounds": bounds.__dict__,
        "detector": detector,
    }
    key = build_key(src, mode, extra)
    if not force and up_to_date(out, key):
        log.info("%s is up to date", out)
        return Report(out, False, json.loads(card_path_for(out).read_text()))
    if mode in ("int8", "int8-io") and calibration is None:
        raise ConvertError(f"mode {mode} needs calibration face photos (--calibration DIR)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out.parent, prefix=".write-test-")
        probe.close()
    except OSError as exc:
        raise ConvertError(f"{out}: cannot write there: {exc.strerror or exc}") from None
    h, w = (int(v) for v in src.spec["input_size"])
    card_spec = _card_from_spec(src.spec)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmpdir:
        tmp = Path(tmpdir)
        spec_file = _spec_file(tmp, src.spec)
        calib_info = None
        representative = None
        if calibration is not None and mode in ("int8", "int8-io"):
            images = (
                calibration_images(Path(calibration))
                if _is_folder(calibration)
                else [Path(p) for p in calibration]
            )
            if len(images) > 2 * max_calibration_faces:  # an even sample across the folder
                images = images[:: len(images) // (2 * max_calibration_faces)]
            calib_info = prepare_crops(
                images, spec_file, tmp / "calib.npz", detector=detector, model_dir=model_dir
            )
            n = len(calib_info["crops"])
            log.info(
                "calibration: %d faces from %d images (%d without a face, %d unreadable)",
                n,
                len(images),
                calib_info["no_face"],
                calib_info["unreadable"],
            )
            if n < min_calibration_faces:
                raise ConvertError(
                    f"{calib_name}: only {n} usable faces for calibration ({calib_info['no_face']} images without a "
                    f"face, {calib_info['unreadable']} unreadable); need at least {min_calibration_faces}"
                )
            representative = _representative(calib_info["crops"][:max_calibration_faces], card_spec)

        eval_info = None
        if evaluation is not None:
            eval_info = prepare_crops(
                evaluation.images,
                spec_file,
                tmp / "eval.npz",
                detector=detector,
                model_dir=model_dir,
            )
            if len(eval_info["crops"]) < min_holdout_faces:
                raise ConvertError(
                    f"only {len(eval_info['crops'])} held-out faces found; the parity gate needs at least {min_holdout_faces}"
                )

        converter, run_source = load_converter(src, (h, w))
        configure(converter, mode, representative)
        try:
            flat = converter.convert()
        except Exception as exc:  # TF raises ConverterError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConvertError(f"{src.path}: TFLite conversion ({mode}) failed: {first}") from None
        staged = tmp / out.name
        staged.write_bytes(flat)
        checks = device_check(staged)
        out_shape = next(c["output"] for c in checks.values() if c["ok"])
        if liveness and out_shape != [1, 1]:
            raise ConvertError(
                f"{src.path}: output shape {out_shape} is not one liveness logit [1, 1]"
            )
        if not liveness and (
            out_shape[-1] != int(src.spec["embedding_size"]) or len(out_shape) != 2
        ):
            raise ConvertError(
                f"{src.path}: output shape {out_shape} is not one embedding of embedding_size "
                f"{src.spec['embedding_size']}"
            )
        report: dict[str, Any] = {
            "mode": mode,
            "size_bytes": len(flat),
            "source_size_bytes": _size(src.path),
        }
        if calib_info is not None:
            report["calibration"] = {k: calib_info[k] for k in ("faces", "no_face", "unreadable")}
        parity_out: dict[str, Any] = {}
        if eval_info is not None:
            crops = eval_info["crops"]
            np.savez(tmp / "evalcrops.npz", crops=crops)
            # A liveness logit is compared raw; embeddings as the device matches them.
            outputs, step = (run_crops, "scores") if liveness else (embed_crops, "embed")
            times = []

            def timed_source(x):
                t = time.perf_counter()
                y = run_source(x)
                times.append((time.perf_counter() - t) * 1e3)
                return y

            try:
                src_out = outputs(timed_source, crops, card_spec, batch=32)
                per_crop = float(np.median(times)) / 32
            except Exception:  # a graph fixed to batch 1
                times.clear()
                src_out = outputs(timed_source, crops, card_spec)
                per_crop = float(np.median(times))
            report["latency_ms"] = {"source_tensorflow_per_face_batched": per_crop}
            labels = None
            if evaluation.labels is not None:
                label_of = {Path(p): int(v) for p, v in zip(evaluation.images, evaluation.labels)}
                labels = np.array([label_of[p] for p in eval_info["paths"]], bool)
            pairs = None
            if evaluation.pairs:
                index = {p: i for i, p in enumerate(eval_info["paths"])}
                pairs = PairSet(
                    a=np.array([index.get(p.a, -1) for p in evaluation.pairs]),
                    b=np.array([index.get(p.b, -1) for p in evaluation.pairs]),
                    same=np.array([p.same for p in evaluation.pairs]),
                    fold=np.array([p.fold for p in evaluation.pairs]),
                )
            failures = []
            for runtime, info in checks.items():
                if not info.get("ok"):
                    continue
                res = _devrun(
                    step,
                    str(staged),
                    runtime,
                    str(spec_file),
                    str(tmp / "evalcrops.npz"),
                    str(tmp / "out.npy"),
                )
                conv_out = np.load(tmp / "out.npy")
                report["latency_ms"][f"converted_{runtime}"] = res["median_ms"]
                if liveness:
                    parity = compare_liveness(src_out, conv_out, runtime, labels)
                else:
                    parity = compare(src_out, conv_out, runtime, pairs)
                parity_out[runtime] = parity.as_dict()
                failures += [f"{runtime}: {f}" for f in parity.failures(bounds)]
            report["parity"] = parity_out
            report["evaluation"] = {
                "images": len(evaluation.images),
                "faces": len(crops),
                "no_face": eval_info["no_face"],
                "pairs": len(evaluation.pairs or []),
            }
            if labels is not None:
                report["evaluation"] |= {"live": int(labels.sum()), "attack": int((~labels).sum())}
            if failures:
                raise ParityError(
                    f"{out.name} ({mode}) fails the parity gate, nothing written: "
                    + "; ".join(failures)
                )
        card = make_card(
            src, mode, hashlib.sha256(flat).hexdigest(), len(flat), {**extra, "runtimes": checks}
        )
        card["file"] = out.name
        card["build_key"] = key
        card["parity"] = parity_out or None
        card["report"] = f"{out.name}.report.json"
        # The card goes last: a .tflite without a matching card is refused by the device.
        atomic_write_bytes(out, flat)
        atomic_write_bytes(
            out.with_name(out.name + ".report.json"), (json.dumps(report, indent=2) + "\n").encode()
        )
        write_card(out, card)
    log.info("wrote %s (%d bytes) and its card", out, len(flat))
    return Report(out, True, card | {"report_data": report})


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
