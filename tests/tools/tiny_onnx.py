"""Build a tiny face-embedding network as ONNX, shaped like a torch.onnx.export of a PyTorch model.

Run as a script with the onnx2tf venv's Python (it has ``onnx``; the main venv does not):
    .venv-onnx2tf/bin/python tests/tools/tiny_onnx.py OUT_DIR
Writes tiny.onnx: input "input" float32 [1, 3, 32, 32] (NCHW, static, as torch.onnx.export
writes it without ``dynamic_axes``) -> Conv(8, 3x3, stride 2) -> Relu -> GlobalAveragePool ->
Flatten -> Gemm(16) -> output "embedding" [1, 16].  Weights are random but fixed, and the conv
kernels are not symmetric, so a wrong NCHW->NHWC handling changes the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = {
        "conv_w": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0, 0.1, (8,)).astype(np.float32),
        "fc_w": rng.normal(0, 0.3, (16, 8)).astype(np.float32),
        "fc_b": rng.normal(0, 0.1, (16,)).astype(np.float32),
    }
    nodes = [
        helper.make_node(
            "Conv",
            ["input", "conv_w", "conv_b"],
            ["conv"],
            name="conv",
            kernel_shape=[3, 3],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["embedding"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_embedder",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 16])],
        initializer=[numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    # IR 8 / opset 17: what torch.onnx.export writes by default, and what every onnxruntime reads.
    model = helper.make_model(
        graph,
        producer_name="facegate-tests",
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(build(), str(out / "tiny.onnx"))
    print(out / "tiny.onnx")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
