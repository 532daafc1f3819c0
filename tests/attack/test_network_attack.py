"""The network attack suite: hostile MQTT messages, web requests and socket peers against one
real daemon and one real bridge on 127.0.0.1 (see tests/attack/network.py for the door and for
what "holds" means).

Prints ``network attack suite: N tried, M broke (mqtt A, web B, socket C)`` and fails when M is
not 0; each broken case is named with what broke.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import MOSQUITTO, start_broker
from hostile import summary
from network import OTHER_UID, Net, NetCase, cases


@pytest.fixture(scope="module")
def net(model_dir: Path) -> Iterator[Net]:
    """One broker, one daemon and one bridge for the whole suite."""
    if not Path(MOSQUITTO).is_file():
        pytest.fail(
            f"{MOSQUITTO} is missing: `make test` installs Debian's mosquitto", pytrace=False
        )
    with tempfile.TemporaryDirectory(prefix="facegate-net-") as tmp:
        d = Path(tmp)
        d.chmod(0o711)  # another user may reach the daemon's socket (and be refused by it)
        broker = start_broker(d / "broker")
        (d / "door").mkdir()
        door = Net(d / "door", model_dir, broker)
        try:
            yield door.start()
        finally:
            door.stop()
            broker.stop()


def attempt(case: NetCase, n: Net) -> str | None:
    """None if the case held, else what broke."""
    sizes, unlocks = n.stderr_sizes(), n.unlocks()
    try:
        why = case.run(n)
    except Exception as exc:  # the case itself failed: counted as broken
        why = f"the case raised {type(exc).__name__}: {exc}"
    problems = [why] if why else []
    held = n.holds()
    if held:
        problems.append(held)
    made = n.unlocks() - unlocks
    if made != case.unlocks:
        problems.append(f"{made} unlock(s) logged")
    for name, text in n.stderr_since(sizes).items():
        if "Traceback" in text:
            tail = text[text.index("Traceback") :].strip().splitlines()[-1][:300]
            problems.append(f"a traceback in the {name}'s stderr: {tail}")
    return "; ".join(problems) or None


def test_the_network_face_holds(net: Net, capsys: pytest.CaptureFixture[str]) -> None:
    all_cases = cases()
    skipped = []
    if os.getuid() != 0:
        skipped.append(f"a connection as uid {OTHER_UID}: not root, cannot become another user")
        all_cases = [c for c in all_cases if not c.name.startswith("a connection as uid")]
    results = [(c, attempt(c, net)) for c in all_cases]
    broke, text = summary("network attack suite", results, show_kind=True)
    with capsys.disabled():
        print("\n" + text)
        for s in skipped:
            print(f"  SKIPPED {s}")
    assert not broke, f"{broke} of {len(all_cases)} network attacks broke facegate"
