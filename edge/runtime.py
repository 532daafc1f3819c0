"""Build a TFLite interpreter from tflite-runtime 2.14 or ai-edge-litert.

In: a model path, a backend name ("auto" or a key of RUNTIMES), a thread count.
Out: a ready :class:`Model` wrapping the interpreter, with one ``run`` call.

Backends are chosen from the explicit RUNTIMES registry and imported only
when asked for, so importing facegate never loads a runtime.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError, RuntimeUnavailable
from edge.text import first_line

log = logging.getLogger(__name__)

# name -> module holding an ``Interpreter`` class with the tf.lite API.
# Order matters for "auto": the successor first (faster here, and the one
# that keeps getting releases), the 2.14 wheel as the fallback.
RUNTIMES: dict[str, str] = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
}


def available_runtimes() -> list[str]:
    """The registry's backends that import on this machine, in preference order."""
    found = []
    for name in RUNTIMES:
        try:
            _interpreter_class(name)
        except RuntimeUnavailable:
            continue
        found.append(name)
    return found


def resolve_runtime(name: str = "auto") -> str:
    """The backend to use: the one named, or the first that imports."""
    if name == "auto":
        found = available_runtimes()
        if not found:
            raise RuntimeUnavailable(
                "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime on Python <= 3.11)"
            )
        return found[0]
    _interpreter_class(name)
    return name


def _interpreter_class(name: str) -> Any:
    try:
        module_name = RUNTIMES[name]
    except KeyError:
        raise RuntimeUnavailable(
            f"unknown runtime {name!r}; choose one of: auto, {', '.join(RUNTIMES)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or numpy ABI errors raised as others
        raise RuntimeUnavailable(f"runtime {name!r} is not usable here: {exc}") from None
    return module.Interpreter


@contextlib.contextmanager
def _captured_stderr(sink: list[str]):
    """Capture what the runtime's C++ side prints on fd 2 while loading a model.

    Both runtimes print "INFO: Created TensorFlow Lite XNNPACK delegate" to the
    raw stderr; a CLI that promises one-line errors logs it at DEBUG instead.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            sink.extend(tmp.read().decode(errors="replace").splitlines())


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int


class Model:
    """One loaded TFLite model.  Not thread-safe: one per thread."""

    def __init__(self, path: str | Path, *, runtime: str = "auto", threads: int = 1) -> None:
        self.path = Path(path)
        self.runtime = resolve_runtime(runtime)
        cls = _interpreter_class(self.runtime)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        printed: list[str] = []
        try:
            with _captured_stderr(printed):
                self._interp = cls(model_path=str(self.path), num_threads=int(threads))
                self._interp.allocate_tensors()
        except Exception as exc:  # the runtimes raise ValueError/RuntimeError
            raise ModelError(
                f"{self.path}: not a loadable TFLite model ({self.runtime}): {first_line(exc)}"
            ) from None
        finally:
            for line in printed:
                log.debug("%s: %s", self.runtime, line)
        self.inputs = [self._spec(d) for d in self._interp.get_input_details()]
        self.outputs = [self._spec(d) for d in self._interp.get_output_details()]
        self._in_index = [d["index"] for d in self._interp.get_input_details()]
        self._out_index = [d["index"] for d in self._interp.get_output_details()]
        log.debug("loaded %s with %s, %d thread(s)", self.path, self.runtime, threads)

    @staticmethod
    def _spec(d: dict[str, Any]) -> TensorSpec:
        scale, zero = d.get("quantization", (0.0, 0))
        return TensorSpec(
            d["name"],
            tuple(int(s) for s in d["shape"]),
            np.dtype(d["dtype"]),
            float(scale),
            int(zero),
        )

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run on float inputs; quantised inputs and outputs are (de)quantised here."""
        for spec, index, given in zip(self.inputs, self._in_index, inputs, strict=False):
            x = given
            if spec.dtype != np.float32 and spec.scale:
                info = np.iinfo(spec.dtype)
                x = np.clip(np.round(given / spec.scale + spec.zero_point), info.min, info.max)
            self._interp.set_tensor(index, np.ascontiguousarray(x, dtype=spec.dtype))
        self._interp.invoke()
        out = []
        for spec, index in zip(self.outputs, self._out_index, strict=False):
            y = self._interp.get_tensor(index)
            if spec.dtype != np.float32 and spec.scale:
                y = (y.astype(np.float32) - spec.zero_point) * spec.scale
            out.append(np.asarray(y, dtype=np.float32))
        return out
