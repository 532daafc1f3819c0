import sys
from typing import Any

import numpy as np
import pytest

from edge.cards import CropRecipe, ModelCard, card_path_for
from edge.embed import Embedder, l2_normalize, normalize
from edge.errors import ModelError
from edge.images import read_image
from edge.pipeline import build_pipeline


def _card(**kw: Any) -> ModelCard:
    base: dict[str, Any] = {
        "path": None,
        "sha256": "",
        "input_size": (2, 2),
        "color": "RGB",
        "normalization": {"kind": "prewhiten"},
        "embedding_size": 4,
        "crop": CropRecipe(),
    }
    base.update(kw)
    return ModelCard(**base)


def test_prewhiten_is_per_image_standardisation():
    rgb = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    x = normalize(rgb, _card())
    assert x.shape == (1, 2, 2, 3) and x.dtype == np.float32
    assert x.mean() == pytest.approx(0, abs=1e-6) and x.std() == pytest.approx(1, abs=1e-5)
    flat = normalize(
        np.full((2, 2, 3), 7, np.uint8), _card()
    )  # std 0: divided by 1/sqrt(N), no NaN
    assert np.all(flat == 0)


def test_fixed_normalisation_and_bgr():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    x = normalize(
        rgb, _card(color="BGR", normalization={"kind": "fixed", "mean": 127.5, "std": 128.0})
    )
    assert x[0, 0, 0, 2] == pytest.approx(127.5 / 128) and x[0, 0, 0, 0] == pytest.approx(
        -127.5 / 128
    )


def test_l2_normalize_refuses_zero():
    assert np.linalg.norm(l2_normalize(np.array([3.0, 4.0]))) == pytest.approx(1)
    with pytest.raises(ModelError):
        l2_normalize(np.zeros(4))


def _embed(pipeline, path):
    frame = read_image(path)
    return pipeline.process(frame, pipeline.detect(frame)[0]).embedding


def test_same_person_scores_above_different_people(config, lfw_samples):
    p = build_pipeline(config)
    e = {k: _embed(p, v) for k, v in lfw_samples.items()}
    for v in e.values():
        assert np.linalg.norm(v.vector) == pytest.approx(1, abs=1e-5) and v.vector.shape == (128,)
    genuine = [
        e["Colin_Powell_0038"].cosine(e["Colin_Powell_0040"]),
        e["Serena_Williams_0001"].cosine(e["Serena_Williams_0003"]),
        e["Tony_Blair_0006"].cosine(e["Tony_Blair_0018"]),
    ]
    names = list(e)
    impostor = [
        e[a].cosine(e[b]) for i, a in enumerate(names) for b in names[i + 1 :] if a[:-5] != b[:-5]
    ]
    assert min(genuine) > max(impostor), (genuine, sorted(impostor)[-3:])
    assert min(genuine) > 0.5 > max(impostor)  # LFW's 10-fold thresholds sit near 0.4-0.5


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="tflite-runtime 2.14 exists only up to Python 3.11"
)
def test_runtimes_agree(model_dir, lfw_samples):
    crops = np.random.default_rng(1).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    a = Embedder(model_dir / "facenet-keras.float32.tflite", runtime="ai-edge-litert").raw(crops)
    b = Embedder(model_dir / "facenet-keras.float32.tflite", runtime="tflite-runtime").raw(crops)
    assert float(l2_normalize(a) @ l2_normalize(b)) > 0.9999


def test_model_whose_shape_contradicts_its_card_is_refused(tmp_path, model_dir, runtime):
    import json
    import shutil

    from edge.files import sha256_file

    fake = tmp_path / "det.tflite"
    shutil.copyfile(
        model_dir / "blazeface-short.tflite", fake
    )  # a 128x128 detector claiming to be FaceNet
    card = json.loads(card_path_for(model_dir / "facenet-keras.float32.tflite").read_text())
    card["sha256"] = sha256_file(fake)
    card_path_for(fake).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        Embedder(fake, runtime=runtime)
