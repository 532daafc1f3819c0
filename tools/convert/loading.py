"""A source model in any format -> a TFLite converter, and a callable that runs the source itself.

Keras 2 .h5 converts directly; a Keras 3 .keras file and an ONNX model are
first turned into a SavedModel; a SavedModel and a frozen graph are traced at
the card's fixed NHWC input, batch 1, as the device feeds them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.text import first_line
from tools.convert import ConvertError
from tools.convert.source import FORMATS, Source

# The source model on a float32 NHWC batch: what the parity gate compares the .tflite with.
RunSource = Callable[[np.ndarray], np.ndarray]


def import_tf() -> Any:
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


def load_converter(src: Source, input_size: tuple[int, int]) -> tuple[Any, RunSource]:
    """(TFLiteConverter, a callable that runs the source model on a float batch)."""
    tf = import_tf()
    try:
        if src.format in _TO_SAVED_MODEL:
            src = _TO_SAVED_MODEL[src.format](src, input_size)
        loader = _LOADERS.get(src.format)
        if loader is not None:
            return loader(tf, src, input_size)
    except ConvertError:
        raise
    except (OSError, ValueError, TypeError, ImportError) as exc:
        raise ConvertError(f"{src.path}: cannot load as {src.format}: {first_line(exc)}") from None
    raise ConvertError(f"{src.path}: unknown format {src.format!r}; one of {', '.join(FORMATS)}")


def _nhwc(tf: Any, input_size: tuple[int, int]) -> list[Any]:
    h, w = input_size
    return [tf.TensorSpec([1, h, w, 3], tf.float32)]


# --------------------------------------------------------------------------- formats converted directly


def _from_keras_h5(tf: Any, src: Source, input_size: tuple[int, int]) -> tuple[Any, RunSource]:
    import tf_keras

    model = tf_keras.models.load_model(str(src.path), compile=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    return converter, lambda x: np.asarray(model(x, training=False))


def _from_saved_model(tf: Any, src: Source, input_size: tuple[int, int]) -> tuple[Any, RunSource]:
    loaded = tf.saved_model.load(str(src.path))
    sigs = list(loaded.signatures)
    if not sigs:
        raise ConvertError(f"{src.path}: SavedModel has no signatures")
    default = "serving_default" if "serving_default" in sigs else sigs[0]
    sig = loaded.signatures[src.tensors.get("signature", default)]
    in_key = next(iter(sig.structured_input_signature[1]))
    out_key = src.tensors.get("output") or next(iter(sig.structured_outputs))
    fn = tf.function(lambda x: sig(**{in_key: x})[out_key], input_signature=_nhwc(tf, input_size))
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], loaded
    )
    return converter, lambda x: np.asarray(sig(**{in_key: tf.constant(x)})[out_key])


def _from_frozen_graph(tf: Any, src: Source, input_size: tuple[int, int]) -> tuple[Any, RunSource]:
    fn, keep = _frozen_graph_function(
        tf, src.path, src.tensors.get("input"), src.tensors.get("output")
    )
    # tf.function traces a Python callable; fn is a pruned ConcreteFunction, so it is wrapped.
    fixed = tf.function(lambda x: fn(x), input_signature=_nhwc(tf, input_size))  # noqa: PLW0108
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [fixed.get_concrete_function()], keep
    )
    return converter, lambda x: np.asarray(fn(tf.constant(x)))


_LOADERS: dict[str, Callable[[Any, Source, tuple[int, int]], tuple[Any, RunSource]]] = {
    "keras-h5": _from_keras_h5,
    "saved-model": _from_saved_model,
    "frozen-graph": _from_frozen_graph,
}


# --------------------------------------------------------------------------- formats converted through a SavedModel


def _keras_to_saved_model(src: Source, input_size: tuple[int, int]) -> Source:
    import keras

    model = keras.saving.load_model(str(src.path), compile=False)
    # Keras 3 models convert reliably only through a SavedModel export.
    exported = Path(tempfile.mkdtemp(prefix="facegate-keras-"))
    atexit.register(shutil.rmtree, exported, True)
    model.export(str(exported / "saved"), format="tf_saved_model", verbose=False)
    return replace(src, path=exported / "saved", format="saved-model")


def _onnx_to_saved_model(src: Source, input_size: tuple[int, int]) -> Source:
    from tools.convert.onnx import to_saved_model

    # onnx2tf (own venv, own TensorFlow) gives an NHWC SavedModel, checked against onnxruntime.
    return replace(src, path=to_saved_model(src.path, input_size), format="saved-model", tensors={})


_TO_SAVED_MODEL: dict[str, Callable[[Source, tuple[int, int]], Source]] = {
    "keras": _keras_to_saved_model,
    "onnx": _onnx_to_saved_model,
}


# --------------------------------------------------------------------------- frozen graphs


def _frozen_graph_function(
    tf: Any, path: Path, input_name: str | None, output_name: str | None
) -> tuple[Any, Any]:
    """(the graph pruned from input to output, the wrapped function that keeps its variables alive)."""
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:
        raise ConvertError(f"{path}: not a TensorFlow GraphDef: {exc}") from None
    nodes = {n.name: n for n in graph_def.node}
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    in_node = _input_node(path, input_name, placeholders, nodes)
    out_node = _output_node(path, output_name, graph_def)
    for what, node in (("--input-name", in_node), ("--output-name", out_node)):
        if node not in nodes:
            close = [n for n in nodes if node.lower() in n.lower()][:5]
            raise ConvertError(
                f"{path}: {what}: no tensor {node!r} in the graph"
                + (f" (similar: {close})" if close else "")
            )
    extra = [p for p in placeholders if p != in_node]

    def _import() -> None:
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


def _input_node(
    path: Path, input_name: str | None, placeholders: list[str], nodes: dict[str, Any]
) -> str:
    """The given input's node, or else the graph's only float placeholder."""
    if input_name is None:
        float_inputs = [p for p in placeholders if nodes[p].attr["dtype"].type == 1]  # DT_FLOAT
        if len(float_inputs) != 1:
            raise ConvertError(
                f"{path}: cannot tell the input tensor among {placeholders}; give --input-name"
            )
        input_name = float_inputs[0]
    return input_name.split(":")[0]


def _output_node(path: Path, output_name: str | None, graph_def: Any) -> str:
    """The given output's node, or else the graph's only sink (a node nothing consumes)."""
    if output_name is None:
        consumed = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
        sinks = [
            n.name
            for n in graph_def.node
            if n.name not in consumed and n.op not in ("Const", "NoOp", "Placeholder")
        ]
        if len(sinks) != 1:
            raise ConvertError(
                f"{path}: cannot tell the output tensor among {sinks[:8]}; give --output-name"
            )
        output_name = sinks[0]
    return output_name.split(":")[0]
