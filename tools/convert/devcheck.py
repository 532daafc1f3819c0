"""Load a .tflite in one device runtime and run it once; prints JSON.

Run as a subprocess by tools/convert: a process that has imported TensorFlow
cannot also load tflite-runtime's interpreter (both bundle TFLite), and the
device never has TensorFlow, so the check is made in a clean process.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    from edge.errors import FacegateError
    from edge.runtime import Model

    path, runtime = argv
    try:
        m = Model(path, runtime=runtime, threads=1)
        y = m.run(np.zeros(m.inputs[0].shape, np.float32))[0]
    except FacegateError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps({"ok": True, "input": list(m.inputs[0].shape), "output": list(y.shape),
                      "input_dtype": str(m.inputs[0].dtype), "finite": bool(np.isfinite(y).all())}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
