import numpy as np
import pytest

from edge.errors import ModelError, RuntimeUnavailable
from edge.runtime import RUNTIMES, Model, available_runtimes, resolve_runtime


def test_both_runtimes_are_installed_in_the_test_environment(runtime):
    assert runtime in available_runtimes()
    assert resolve_runtime(runtime) == runtime


def test_auto_prefers_ai_edge_litert():
    assert resolve_runtime("auto") == next(iter(RUNTIMES)) == "ai-edge-litert"


def test_unknown_runtime_is_refused():
    with pytest.raises(RuntimeUnavailable, match="unknown runtime 'tensorflow'"):
        resolve_runtime("tensorflow")


def test_detector_loads_and_runs(model_dir, runtime):
    m = Model(model_dir / "blazeface-short.tflite", runtime=runtime, threads=1)
    assert m.runtime == runtime
    assert m.inputs[0].shape == (1, 128, 128, 3)
    outs = m.run(np.zeros((1, 128, 128, 3), np.float32))
    assert sorted(o.shape for o in outs) == [(1, 896, 1), (1, 896, 16)]


def test_missing_and_corrupt_models_are_one_line_errors(tmp_path, runtime):
    with pytest.raises(ModelError, match="model file not found"):
        Model(tmp_path / "none.tflite", runtime=runtime)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError) as e:
        Model(bad, runtime=runtime)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
