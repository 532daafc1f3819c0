"""tools/convert: a face-embedding or liveness model -> a TFLite model the device runs, with its model card.

In: a model (Keras 2 .h5, Keras .keras, SavedModel directory, TensorFlow frozen
graph .pb, ONNX .onnx through onnx2tf in its own venv), or a name from models/manifest.yaml (fetched from its wheel).
Out: ``NAME.MODE.tflite`` and ``NAME.MODE.tflite.card.json`` beside it, both
written atomically, after the .tflite has loaded in every device runtime.

TensorFlow is imported only here (workstation side); the device package
``edge`` never imports it.  Calibration images go through edge's own detector
and crop, so int8 sees exactly what the device will feed it.

Modules:
  build     convert(): the conversion, step by step, and its Report
  source    Source: the model to convert, its format and task
  loading   a source in any format -> a TFLite converter and a callable running the source
  quantize  the modes (float16, int8, ...) and the int8 calibration set
  device    edge's device steps (crops, runtime checks) in clean child processes
  holdout   the held-out faces and the parity gate over them
  card      the model card, and the build key that lets a conversion be reused
  devrun    the child process's commands (python -m tools.convert.devrun)
  onnx      ONNX -> SavedModel through onnx2tf in its own venv
  parity    the parity gate's comparisons and bounds
  __main__  the command line
"""

from __future__ import annotations

from pathlib import Path

from edge.errors import FacegateError, ModelError

ROOT = Path(__file__).resolve().parents[2]


class ConvertError(FacegateError, ValueError):
    """The source model cannot be converted as asked."""

    exit_code = ModelError.exit_code
