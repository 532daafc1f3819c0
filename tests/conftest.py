"""Shared fixtures: sample images, the model cache, the runtimes, and ../shared/data."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from broker import MOSQUITTO, Broker, start_broker

from edge.config import Config, RuntimeConfig, load_config
from edge.manifest import FETCHED_ROLES, default_cache_dir, load_manifest

TESTS = Path(__file__).resolve().parent
SAMPLES = TESTS / "data"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"
# The default embedder, and FaceNet (the liveness tests use its stem; it stays a documented option).
EMBEDDERS = (load_config().models.embedder, "facenet-keras.float32.tflite")


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def lfw_samples() -> dict[str, Path]:
    """The committed LFW faces by file stem, e.g. 'Colin_Powell_0038'."""
    return {p.stem: p for p in sorted((SAMPLES / "lfw").glob("*.jpg"))}


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The model cache filled by `make models`; its absence is an install error, not a skip."""
    d = default_cache_dir()
    missing = [
        e.filename
        for e in load_manifest().values()
        if e.role in FETCHED_ROLES and not (d / e.filename).is_file()
    ]
    missing += [name for name in EMBEDDERS if not (d / name).is_file()]
    if missing:
        pytest.fail(
            f"models missing from {d}: {', '.join(missing)}; run `make models` first", pytrace=False
        )
    return d


@pytest.fixture(params=["ai-edge-litert", "tflite-runtime"])
def runtime(request: pytest.FixtureRequest) -> str:
    """Each model test runs under both device runtimes."""
    if request.param == "tflite-runtime" and sys.version_info >= (3, 12):
        pytest.skip("tflite-runtime 2.14 exists only up to Python 3.11")
    return request.param


@pytest.fixture
def config(model_dir: Path, runtime: str) -> Config:
    base = load_config()
    return replace(
        base,
        runtime=RuntimeConfig(backend=runtime, threads=2),
        models=replace(base.models, dir=str(model_dir)),
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the LFW and NUAA sets; tests that need it skip when it is absent."""
    if not (SHARED_DATA / "lfw" / "pairs.txt").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA} (LFW/NUAA); data-backed test skipped")
    return SHARED_DATA


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto (Debian's package, which `make test` installs) on 127.0.0.1."""
    if not Path(MOSQUITTO).is_file():
        pytest.fail(
            f"{MOSQUITTO} is missing: `make test` installs Debian's mosquitto", pytrace=False
        )
    b = start_broker(tmp_path / "broker")
    try:
        yield b
    finally:
        b.stop()
