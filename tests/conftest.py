"""Shared fixtures: sample images, the model cache, the runtimes, ../shared/data, a broker, a browser."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from broker import MOSQUITTO, Broker, start_broker
from household import HouseholdDoor

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


# Playwright may not download a browser here: Debian's chromium (`make test` installs it).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Nothing but 127.0.0.1: no name resolves, and Chromium's own background traffic is off.
ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pings",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies) that trusts the app's self-signed certificate."""
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 800})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def household_door(tmp_path: Path, model_dir: Path, runtime: str) -> Iterator[HouseholdDoor]:
    """The daemon and the bridge serving the web app, as processes (tests/household.py)."""
    d = HouseholdDoor(tmp_path, model_dir, runtime).start()
    try:
        yield d
    finally:
        d.stop()


PASSWORD = "correct horse battery"


@pytest.fixture
def web(tmp_path: Path, model_dir: Path, runtime: str) -> Iterator[Any]:
    """The web app through FastAPI's test client, over a real Household and a real door's log.

    The door (in this process, virtual time) has met 0005 (enrolled: let in) and 0009 (not
    enrolled: refused) once each, with snapshots; the app's password is PASSWORD.
    """
    from fastapi.testclient import TestClient
    from household import NUAA, FakeClock, LocalDaemon, WebHarness, door_config, run_door

    from edge.bridge.household import Household
    from edge.web.app import create_app
    from edge.web.auth import set_password
    from edge.web.server import prepare_state_dir

    config = door_config(tmp_path, model_dir, runtime)
    visits = [sorted((NUAA / s).glob(f"{s}_*_*_02_*.jpg"))[0] for s in ("0005", "0009")]
    svc = run_door(config, visits, tmp_path)
    household = Household(config, pipeline=svc.pipeline, policy=svc.policy, last_frame=lambda: None)
    daemon = LocalDaemon(household)
    set_password(prepare_state_dir(config.web.state_dir), PASSWORD)
    clock = FakeClock()

    app = create_app(config, daemon, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield WebHarness(config, daemon, clock, svc.policy, tmp_path, app, client)
