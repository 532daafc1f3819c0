"""A small generator of hostile inputs, each run against the real facegate command line.

Every case writes its files into a fresh folder and names the command to run
(``facegate ...``, ``python -m tools.report ...``).  A case *holds* when the
command ends within its time limit with no traceback and, if it failed, with
exactly one error line and an exit code that names the kind of error (never 1,
"internal error"); for the daemon also when no unlock was logged.  It *breaks*
otherwise.  ``tests/attack/test_attack.py`` runs them all and prints
``N tried, M broke``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import ExitCode


def made_dir(path: Path) -> Path:
    path.mkdir()
    return path


@dataclass
class Case:
    name: str
    kind: str  # config, image, gallery, card, log, labels, cli
    make: Callable[[Path, World], list[str]]  # writes files, returns argv after the program
    program: str = "facegate"  # or "report"
    ok_codes: frozenset[int] = field(
        default_factory=lambda: frozenset(c for c in ExitCode if c != ExitCode.FAILURE)
    )
    timeout_s: float = 60.0


@dataclass
class World:
    """What every case may start from: the model cache, sample frames, and a working door config."""

    model_dir: Path
    samples: Path

    def face(self, subject: str = "0005", i: int = 0) -> Path:
        return sorted((self.samples / "nuaa" / "ClientRaw" / subject).glob("*.jpg"))[i]

    def door(self, d: Path, extra: str = "") -> Path:
        """A config for a door in ``d``: gallery, log and state there, liveness off, mock relay."""
        cfg = d / "door.yaml"
        cfg.write_text(
            f"gallery: {{path: {d / 'gallery.json'}}}\nlog: {{decisions: {d / 'decisions.jsonl'}}}\n"
            f"liveness: {{enabled: false}}\n{extra}"
        )
        return cfg

    def enrolled_door(self, d: Path, extra: str = "") -> Path:
        """A door with alice enrolled: a real gallery made by the real command."""
        import subprocess
        import sys

        cfg = self.door(d, extra)
        frames = [str(self.face("0005", i)) for i in range(3)]
        env = {**os.environ, "FACEGATE_MODEL_DIR": str(self.model_dir)}
        p = subprocess.run(
            [sys.executable, "-m", "edge", "-c", str(cfg), "enroll", "alice", *frames],
            capture_output=True,
            text=True,
            env=env,
        )
        assert p.returncode == 0, p.stderr
        return cfg

    def replay(self, d: Path, subject: str = "0009") -> Path:
        """A replay folder of a stranger's frames (alice is 0005)."""
        r = d / "replay"
        r.mkdir(exist_ok=True)
        for i, f in enumerate(
            sorted((self.samples / "nuaa" / "ClientRaw" / subject).glob("*.jpg"))
        ):
            shutil.copyfile(f, r / f"{i:04d}.jpg")
        return r


# --------------------------------------------------------------------------- hostile bytes


def png_declaring(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_declaring(w: int, h: int) -> bytes:
    _ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# --------------------------------------------------------------------------- the cases


def _config_cases() -> Iterator[Case]:
    texts = {
        "duplicate top-level key": "match:\n  min_margin: 0.1\nmatch:\n  min_cosine_similarity: -1\n",
        "duplicate nested key": "match:\n  min_cosine_similarity: 0.6\n  min_cosine_similarity: -1\n",
        "alias bomb": "a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(9)
        )
        + "match: {min_margin: *j}\n",
        "alias under a known key": "x: &x 0.9\nmatch: {min_cosine_similarity: *x}\n",
        "unknown key": "match: {min_cosine_similarty: 0.5}\n",
        "wrong type": "match: {min_cosine_similarity: high}\n",
        "out of range": "match: {min_cosine_similarity: 1.7}\n",
        "NaN threshold": "match: {min_cosine_similarity: .nan}\n",
        "infinite threshold": "match: {min_cosine_similarity: .inf}\n",
        "1e400": "match: {min_cosine_similarity: 1e400}\n",
        "bool for a number": "policy: {frames: true}\n",
        "list at top level": "- match\n- lock\n",
        "section as a scalar": "match: 3\n",
        "deep nesting": "x: " + nested(5000) + "\n",
        "deep mapping nesting": "x: " + nested(3000, "{a: ", "}") + "\n",
        "tab indentation": "match:\n\tmin_margin: 0.1\n",
        "NUL in a path": 'gallery: {path: "/tmp/g\\0.json"}\n',
        "very long path": f"gallery: {{path: /{'a' * 10000}}}\n",
        "k above n": "policy: {frames: 3, min_matching_frames: 4}\nliveness: {min_frames: 3}\n",
        "liveness frames above window": "policy: {frames: 3, min_matching_frames: 2}\n",
        "negative pin": "lock: {relay_pin: -1}\n",
        "pin out of range": "lock: {relay_pin: 99}\n",
        "unknown camera backend": "camera: {backend: ipcam}\n",
        "unknown detector": "models: {detector: haar}\n",
        "unknown landmarker": "models: {landmarker: dlib}\n",
        "zero fps": "camera: {fps: 0}\n",
        "python object tag": "match: !!python/object/apply:os.system ['true']\n",
        "binary tag": "match: !!binary aGVsbG8=\n",
        "empty document": "",
        "only a comment": "# nothing\n",
        "not YAML": "match: {min_margin: [}\n",
        "MQTT door id with a slash": "mqtt: {door_id: front/../../x}\n",
        "MQTT remote unlock without a code": "mqtt: {enabled: true, remote_unlock: true, tls: true}\n",
        "MQTT port out of range": "mqtt: {port: 70000}\n",
    }
    for name, text in texts.items():

        def make(d: Path, w: World, text: str = text) -> list[str]:
            (d / "bad.yaml").write_text(text)
            return ["-c", str(d / "bad.yaml"), "check-config"]

        yield Case(f"config: {name}", "config", make)

    def latin1(d: Path, w: World) -> list[str]:
        (d / "bad.yaml").write_bytes("# caf\xe9\n".encode("latin-1"))
        return ["-c", str(d / "bad.yaml"), "check-config"]

    def utf16(d: Path, w: World) -> list[str]:
        (d / "bad.yaml").write_bytes("match: {min_margin: 0.1}\n".encode("utf-16"))
        return ["-c", str(d / "bad.yaml"), "check-config"]

    def big(d: Path, w: World) -> list[str]:
        with open(d / "big.yaml", "wb") as f:
            f.truncate(50 << 20)  # 50 MB of NULs, sparse
        return ["-c", str(d / "big.yaml"), "check-config"]

    rules_texts = {
        "unknown time zone": "timezone: Mars/Olympus\npeople: {}\n",
        "garbage window": "people: {alice: {windows: ['always']}}\n",
        "window as a mapping": "people: {alice: {windows: {mon: all}}}\n",
        "max entries negative": "people: {carol: {max_entries: -3}}\n",
        "validity reversed": "people: {carol: {valid_from: 2027-01-02, valid_to: 2027-01-01}}\n",
        "date garbage": "people: {carol: {valid_to: next tuesday}}\n",
        "people as a list": "people: [alice, bob]\n",
        "alias bomb": "a: &a [x,x,x,x,x,x,x,x,x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
            for i in range(9)
        )
        + "people: {alice: {windows: *j}}\n",
        "python tag": "people: !!python/object/apply:os.system ['true']\n",
    }
    for name, text in rules_texts.items():

        def make_rules(d: Path, w: World, text: str = text) -> list[str]:
            (d / "access.yaml").write_text(text)
            (d / "door.yaml").write_text(f"access: {{rules: {d / 'access.yaml'}}}\n")
            return ["-c", str(d / "door.yaml"), "check-config"]

        yield Case(f"config: access rules: {name}", "config", make_rules)

    def rules_fifo(d: Path, w: World) -> list[str]:
        (d / "door.yaml").write_text(f"access: {{rules: {fifo(d / 'access.yaml')}}}\n")
        return ["-c", str(d / "door.yaml"), "check-config"]

    yield Case("config: access rules: a FIFO", "config", rules_fifo, timeout_s=20)

    def code_readable(d: Path, w: World) -> list[str]:
        (d / "code").write_text("246813\n")
        (d / "code").chmod(0o644)
        (d / "door.yaml").write_text(
            f"mqtt: {{enabled: true, remote_unlock: true, tls: true, code_file: {d / 'code'}}}\n"
        )
        return ["-c", str(d / "door.yaml"), "check-config"]

    yield Case("config: MQTT code file others can read", "config", code_readable)
    yield Case("config: not UTF-8", "config", latin1)
    yield Case("config: UTF-16", "config", utf16)
    yield Case("config: 50 MB", "config", big)
    yield Case(
        "config: a FIFO",
        "config",
        lambda d, w: ["-c", str(fifo(d / "c.yaml")), "check-config"],
        timeout_s=20,
    )
    yield Case("config: a directory", "config", lambda d, w: ["-c", str(d), "check-config"])
    yield Case(
        "config: missing", "config", lambda d, w: ["-c", str(d / "none.yaml"), "check-config"]
    )
    yield Case(
        "config: /dev/zero",
        "config",
        lambda d, w: ["-c", "/dev/zero", "check-config"],
        timeout_s=20,
    )

    def relay_off_typo(d: Path, w: World) -> list[str]:
        (d / "typo.yaml").write_text(
            "lock: {relay_pin: 22}\nmatch: {min_cosine_similarty: 0.5}\npolicy: [x]\n"
        )
        return ["-c", str(d / "typo.yaml"), "relay-off", "--mock-gpio"]

    yield Case(
        "relay-off: unrelated keys broken",
        "config",
        relay_off_typo,
        ok_codes=frozenset({ExitCode.OK}),
    )

    def relay_off_not_yaml(d: Path, w: World) -> list[str]:
        (d / "typo.yaml").write_text("lock:\n  relay_pin: 22\n match: [oops\n\tpolicy\n")
        return ["-c", str(d / "typo.yaml"), "relay-off", "--mock-gpio"]

    yield Case(
        "relay-off: the config not YAML at all",
        "config",
        relay_off_not_yaml,
        ok_codes=frozenset({ExitCode.OK}),
    )

    def daemon_bad_config(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d, "match:\n  min_margin: 0.1\n")
        cfg.write_text(cfg.read_text() + "match:\n  min_cosine_similarity: -1\n")
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d))]

    yield Case("run: a second match section lowering the threshold", "config", daemon_bad_config)


def _image_cases() -> Iterator[Case]:
    makers: dict[str, Callable[[Path, World], Path]] = {
        "PNG declaring 100000x100000": lambda d, w: _write(
            d / "bomb.png", png_declaring(100_000, 100_000)
        ),
        "PNG declaring 30000x30000": lambda d, w: _write(
            d / "bomb2.png", png_declaring(30_000, 30_000)
        ),
        "JPEG declaring 60000x60000": lambda d, w: _write(
            d / "bomb.jpg", jpeg_declaring(60_000, 60_000)
        ),
        "truncated JPEG": lambda d, w: _write(d / "torn.jpg", w.face().read_bytes()[:500]),
        "empty file": lambda d, w: _write(d / "empty.jpg", b""),
        "text file": lambda d, w: _write(d / "notes.jpg", b"hello, this is not a picture\n" * 10),
        "random bytes": lambda d, w: _write(
            d / "noise.png", np.random.default_rng(0).bytes(100_000)
        ),
        "a FIFO": lambda d, w: fifo(d / "pipe.jpg"),
        "a directory": lambda d, w: made_dir(d / "dir.jpg"),
        "missing": lambda d, w: d / "none.jpg",
        "70 MB sparse file": lambda d, w: _sparse(d / "huge.jpg", 70 << 20),
        "1x1 image": lambda d, w: _imwrite(d / "tiny.png", np.zeros((1, 1, 3), np.uint8)),
        "grey image": lambda d, w: _imwrite(d / "grey.png", np.full((480, 640), 128, np.uint8)),
        "16-bit PNG": lambda d, w: _imwrite(
            d / "deep.png", (np.random.default_rng(1).random((64, 64, 3)) * 65535).astype(np.uint16)
        ),
        "RGBA PNG": lambda d, w: _imwrite(d / "alpha.png", np.zeros((64, 64, 4), np.uint8)),
        "100x10000 strip": lambda d, w: _imwrite(
            d / "strip.png", np.zeros((10000, 100, 3), np.uint8)
        ),
        "no face": lambda d, w: _imwrite(d / "wall.jpg", np.full((480, 640, 3), 200, np.uint8)),
        "symlink to /dev/zero": lambda d, w: _link(d / "zero.jpg", "/dev/zero"),
    }
    for name, mk in makers.items():

        def embed(d: Path, w: World, mk: Callable[[Path, World], Path] = mk) -> list[str]:
            return ["embed", str(mk(d, w))]

        def enroll(d: Path, w: World, mk: Callable[[Path, World], Path] = mk) -> list[str]:
            # The hostile file between two good ones: the good ones must still be enrolled.
            return [
                "-c",
                str(w.door(d)),
                "enroll",
                "alice",
                str(w.face("0005", 0)),
                str(mk(d, w)),
                str(w.face("0005", 1)),
            ]

        yield Case(f"embed: {name}", "image", embed, timeout_s=30)
        yield Case(
            f"enroll: {name} among good photos",
            "image",
            enroll,
            ok_codes=frozenset({ExitCode.OK}),
            timeout_s=30,
        )

    def replay_with_bombs(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        r = w.replay(d)
        _write(r / "0002.jpg", png_declaring(100_000, 100_000))
        _write(r / "0004.jpg", b"torn")
        (r / "0006.jpg").unlink()
        fifo(r / "0006.jpg")
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(r)]

    yield Case(
        "run: a replay with bombs, torn frames and a FIFO", "image", replay_with_bombs, timeout_s=60
    )


def _gallery_cases() -> Iterator[Case]:
    def edit(change: Callable[[dict], object]) -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            cfg = w.enrolled_door(d)
            g = d / "gallery.json"
            doc = json.loads(g.read_text())
            change(doc)
            g.write_text(json.dumps(doc))
            g.chmod(0o600)
            return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

        return make

    def text(body: str | bytes, mode: int = 0o600) -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            cfg = w.enrolled_door(d)
            g = d / "gallery.json"
            g.write_bytes(body.encode() if isinstance(body, str) else body)
            g.chmod(mode)
            return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

        return make

    def first_template(doc: dict) -> list:
        return doc["people"]["alice"]["templates"][0]

    cases: dict[str, Callable[[Path, World], list[str]]] = {
        "not JSON": text("{oops"),
        "a JSON list": text("[1, 2, 3]"),
        "not UTF-8": text(b"\xff\xfe{}"),
        "deep nesting": text(nested(100_000)),
        "schema 1": edit(lambda d: d.update(schema=1)),
        "schema 99": edit(lambda d: d.update(schema=99)),
        "no preprocessing": edit(lambda d: d.pop("preprocessing")),
        "another colour order": edit(lambda d: d["preprocessing"].update(color="BGR")),
        "another crop": edit(
            lambda d: d["preprocessing"]["crop"]["template"]["nose_tip"].__setitem__(1, 80.0)
        ),
        "another model": edit(lambda d: d.update(model_sha256="0" * 64)),
        "embedding_size 512": edit(lambda d: d.update(embedding_size=512)),
        "template of 1e400": edit(lambda d: first_template(d).__setitem__(0, float("inf"))),
        "template with NaN": edit(lambda d: first_template(d).__setitem__(3, float("nan"))),
        "template holding the integer 10**400": edit(
            lambda d: first_template(d).__setitem__(2, 10**400)
        ),
        "template not unit length": edit(
            lambda d: d["people"]["alice"]["templates"].__setitem__(0, [1.0] * 128)
        ),
        "1,000 templates": edit(
            lambda d: d["people"]["alice"].update(
                templates=d["people"]["alice"]["templates"][:1] * 1000,
                added=["t"] * 1000,
                sources=["s"] * 1000,
            )
        ),
        "a name with terminal escapes": edit(
            lambda d: d["people"].update({"\x1b[31mroot": d["people"]["alice"]})
        ),
        "a name with a path": edit(
            lambda d: d["people"].update({"../../etc": d["people"]["alice"]})
        ),
        "unknown field": edit(lambda d: d.update(backdoor=True)),
        "people as a list": edit(lambda d: d.update(people=[])),
        "world-writable": text("{}", mode=0o666),
    }
    for name, make in cases.items():
        yield Case(f"gallery: {name}", "gallery", make)

    def duplicate_person(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        g = d / "gallery.json"
        body = g.read_text()
        person = json.dumps(json.loads(body)["people"]["alice"])
        g.write_text(body.replace('"people": {', f'"people": {{"alice": {person},', 1))
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

    def writable_dir(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        d.chmod(0o777)
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

    def symlinked(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        g = d / "gallery.json"
        real = d / "real.json"
        g.rename(real)
        g.symlink_to(real)
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

    def gallery_fifo(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        (d / "gallery.json").unlink()
        fifo(d / "gallery.json")
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

    def users_on_bad(d: Path, w: World) -> list[str]:
        cfg = w.door(d)
        (d / "gallery.json").write_text('{"schema": 2, "people": ' + nested(50_000) + "}")
        (d / "gallery.json").chmod(0o600)
        return ["-c", str(cfg), "users", "list"]

    yield Case("gallery: a person named twice", "gallery", duplicate_person)
    yield Case("gallery: in a world-writable directory", "gallery", writable_dir)
    yield Case("gallery: behind a symlink", "gallery", symlinked)
    yield Case("gallery: a FIFO", "gallery", gallery_fifo, timeout_s=30)
    yield Case("users list: deep nesting", "gallery", users_on_bad)


def _card_cases() -> Iterator[Case]:
    def card(change: Callable[[dict], object]) -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            models = d / "models"
            models.mkdir()
            for f in w.model_dir.iterdir():
                if f.is_file() and f.suffix in (".tflite", ".json", ".onnx"):
                    shutil.copyfile(f, models / f.name)
            from edge.config import load_config

            name = load_config().models.embedder
            path = models / f"{name}.card.json"
            doc = json.loads(path.read_text())
            change(doc)
            path.write_text(json.dumps(doc))
            cfg = d / "c.yaml"
            cfg.write_text(f"models: {{dir: {models}}}\n")
            return ["-c", str(cfg), "compare", str(w.face("0005", 0)), str(w.face("0005", 1))]

        return make

    def tpl(doc: dict) -> dict:
        return doc["crop"]["template"]

    changes: dict[str, Callable[[dict], object]] = {
        "std 0": lambda c: c["input"]["normalization"].update(std=0),
        "std NaN": lambda c: c["input"]["normalization"].update(std=float("nan")),
        "mean a string": lambda c: c["input"]["normalization"].update(mean="zero"),
        "unknown normalisation": lambda c: c["input"]["normalization"].update(kind="magic"),
        "colour XYZ": lambda c: c["input"].update(color="XYZ"),
        "input size 0": lambda c: c["input"].update(size=[0, 0]),
        "input size huge": lambda c: c["input"].update(size=[100000, 100000]),
        "input size that the model does not have": lambda c: c["input"].update(size=[160, 160]),
        "aspect 0": lambda c: c.update(crop={"method": "box", "aspect": 0}),
        "margin 1e9": lambda c: c.update(crop={"method": "box", "margin": 1e9}),
        "unknown crop method": lambda c: c.update(crop={"method": "magic"}),
        "template of one point": lambda c: c["crop"].update(template={"nose_tip": [56, 71]}),
        "template point NaN": lambda c: tpl(c).update(nose_tip=[float("nan"), 71.0]),
        "template points coincide": lambda c: c["crop"].update(
            template={"right_eye": [5, 5], "left_eye": [5, 5]}
        ),
        "template landmark nobody gives": lambda c: tpl(c).update(left_earlobe=[90.0, 60.0]),
        "crop a string": lambda c: c.update(crop="box"),
        "wrong sha256": lambda c: c.update(sha256="0" * 64),
        "role liveness": lambda c: c.update(role="liveness"),
        "schema 2": lambda c: c.update(schema=2),
        "embedding size 512": lambda c: c["embedding"].update(size=512),
        "no input": lambda c: c.pop("input"),
    }
    for name, change in changes.items():
        yield Case(f"card: {name}", "card", card(change))

    def truncated_model(d: Path, w: World) -> list[str]:
        args = card(lambda c: None)(d, w)
        from edge.config import load_config

        m = d / "models" / load_config().models.embedder
        m.write_bytes(m.read_bytes()[: m.stat().st_size // 2])
        return args

    def card_not_json(d: Path, w: World) -> list[str]:
        args = card(lambda c: None)(d, w)
        from edge.config import load_config

        (d / "models" / f"{load_config().models.embedder}.card.json").write_text("{not json")
        return args

    def yunet_garbage(d: Path, w: World) -> list[str]:
        args = card(lambda c: None)(d, w)
        (d / "models" / "yunet.onnx").write_bytes(b"garbage" * 100)
        return args

    yield Case("card: the model truncated", "card", truncated_model)
    yield Case("card: not JSON", "card", card_not_json)
    yield Case("card: the landmark model replaced", "card", yunet_garbage)


def _liveness_cases() -> Iterator[Case]:
    """The MiniFASNet cue's networks and cards broken: the daemon must not start (nor unlock alice)."""
    from edge.liveness import MINIFASNET_MODELS, shipped_model

    def door(change: Callable[[Path], object]) -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            nets = made_dir(d / "minifasnet")
            for n in MINIFASNET_MODELS:
                shutil.copyfile(shipped_model(n), nets / n)
                shutil.copyfile(f"{shipped_model(n)}.card.json", nets / f"{n}.card.json")
            change(nets)
            cfg = w.enrolled_door(d)
            cfg.write_text(
                cfg.read_text().replace(
                    "liveness: {enabled: false}",
                    f"liveness: {{enabled: true, minifasnet_models: {nets}}}",
                )
            )
            return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d, "0005"))]

        return make

    def card(edit: Callable[[dict], object]) -> Callable[[Path], object]:
        def change(nets: Path) -> None:
            path = nets / f"{MINIFASNET_MODELS[1]}.card.json"
            doc = json.loads(path.read_text())
            edit(doc)
            path.write_text(json.dumps(doc))

        return change

    def tamper(nets: Path) -> None:
        data = bytearray((nets / MINIFASNET_MODELS[0]).read_bytes())
        data[4000:4004] = b"\x00\x01\x02\x03"
        (nets / MINIFASNET_MODELS[0]).write_bytes(bytes(data))

    def folder_a_file(nets: Path) -> None:
        shutil.rmtree(nets)
        nets.write_text("")

    changes: dict[str, Callable[[Path], object]] = {
        "a network that fails its sha256": tamper,
        "a network missing": lambda n: (n / MINIFASNET_MODELS[0]).unlink(),
        "a card missing": lambda n: (n / f"{MINIFASNET_MODELS[0]}.card.json").unlink(),
        "patch box_width NaN": card(lambda c: c["crop"].update(box_width=float("nan"))),
        "patch box_height 0": card(lambda c: c["crop"].update(box_height=0)),
        "patch scale 1e9": card(lambda c: c["crop"].update(scale=1e9)),
        "patch method unknown": card(lambda c: c["crop"].update(method="patchwork")),
        "card of an embedder": card(lambda c: c.update(role="embedder")),
        "output of three classes": card(lambda c: c.update(output={"kind": "logit", "size": 3})),
        "the network world-writable": lambda n: (n / MINIFASNET_MODELS[1]).chmod(0o666),
        "the folder a file": folder_a_file,
    }
    for name, change in changes.items():
        yield Case(f"liveness: MiniFASNet {name}", "card", door(change))


def _log_cases() -> Iterator[Case]:
    def record(**over: object) -> dict:
        base = {
            "schema": 1,
            "event_id": "e1",
            "time": "2026-01-01T00:00:00.000Z",
            "unix_time": 1767225600.0,
            "decision": "deny",
            "reason": "unknown_face",
            "person": "alice",
            "best": "alice",
            "best_score": 0.3,
            "second": None,
            "second_score": -1.0,
            "threshold": 0.53,
            "min_margin": 0.1,
            "frames_used": 5,
            "frames_matched": 0,
            "track_id": 1,
            "quality": {},
            "liveness": None,
            "exposure_stops": None,
            "model_sha256": "f" * 64,
            "camera": "x",
            "sources": [],
            "snapshot": None,
        }
        base.update(over)
        return base

    def lines(*recs: object, raw: bytes = b"") -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            body = (
                b"".join(
                    (json.dumps(r).encode() if not isinstance(r, bytes) else r) + b"\n"
                    for r in recs
                )
                + raw
            )
            (d / "decisions.jsonl").write_bytes(body)
            return [str(d / "decisions.jsonl"), "--outdir", str(d / "out"), "-q"]

        return make

    good = [record(event_id=f"e{i}") for i in range(3)]
    cases: dict[str, Callable[[Path, World], list[str]]] = {
        "best_score Infinity": lines(
            *good, b'{"schema": 1, "event_id": "x", "best_score": Infinity}'
        ),
        "best_score 1e308": lines(*good, record(event_id="x", best_score=1e308)),
        "best_score 1e400": lines(
            *good, b'{"schema": 1, "event_id": "x", "best_score": 1e400, "decision": "deny"}'
        ),
        "best_score a string": lines(*good, record(event_id="x", best_score="high")),
        "deep nesting": lines(*good, nested(100_000).encode()),
        "torn last line": lines(*good, raw=b'{"schema": 1, "event_i'),
        "not JSON in the middle": lines(good[0], b"garbage", good[1]),
        "schema 99": lines(*good, record(event_id="x", schema=99)),
        "duplicate event_id": lines(*good, record(event_id="e1")),
        "terminal escapes in a name": lines(
            *good, record(event_id="x", person="\x1b[2J\x1b[31mpwned", best="\x1b]0;t\x07")
        ),
        "not UTF-8": lines(*good, b'{"schema": 1, "event_id": "\xff\xfe"}'),
        "a JSON list per line": lines(*good, [1, 2, 3]),
        "unknown decision": lines(*good, record(event_id="x", decision="open")),
        "empty file": lines(),
        "a 20 MB line": lines(*good, b"x" * (20 << 20)),
    }
    for name, make in cases.items():
        yield Case(f"report: {name}", "log", make, program="report")

    def bad_gz(d: Path, w: World) -> list[str]:
        (d / "decisions.jsonl").write_text(json.dumps(record()) + "\n")
        (d / "decisions.jsonl.1.gz").write_bytes(b"\x1f\x8b\x08\x00not gzip at all")
        return [str(d / "decisions.jsonl"), "--outdir", str(d / "out"), "-q"]

    def gz_bomb(d: Path, w: World) -> list[str]:
        (d / "decisions.jsonl").write_text(json.dumps(record()) + "\n")
        with gzip.open(d / "decisions.jsonl.1.gz", "wb") as f:
            for _ in range(64):
                f.write(b"\0" * (1 << 20))
        return [str(d / "decisions.jsonl"), "--outdir", str(d / "out"), "-q"]

    def labelled(score: bytes) -> Callable[[Path, World], list[str]]:
        """A labelled log (scores reach the sweep and the plots) with one record scoring ``score``."""

        def make(d: Path, w: World) -> list[str]:
            bad = json.dumps(record(event_id="x")).encode().replace(b'"best_score": 0.3', score)
            lines(*good, bad)(d, w)
            (d / "labels.csv").write_text("event_id,truth\ne0,alice\ne1,impostor\nx,impostor\n")
            return _labelled_report(d)

        return make

    yield Case(
        "report: labelled, best_score 1e308",
        "log",
        labelled(b'"best_score": 1e308'),
        program="report",
    )
    yield Case(
        "report: labelled, best_score Infinity",
        "log",
        labelled(b'"best_score": Infinity'),
        program="report",
    )
    yield Case("report: a corrupt rotated .gz", "log", bad_gz, program="report")
    yield Case("report: a gzip of 64 MB of NULs", "log", gz_bomb, program="report")
    yield Case(
        "report: a directory as the log", "log", lambda d, w: [str(d), "-q"], program="report"
    )
    yield Case(
        "report: a FIFO as the log",
        "log",
        lambda d, w: [str(fifo(d / "l.jsonl")), "-q"],
        program="report",
        timeout_s=20,
    )

    def labels(body: bytes) -> Callable[[Path, World], list[str]]:
        def make(d: Path, w: World) -> list[str]:
            (d / "decisions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
            (d / "labels.csv").write_bytes(body)
            return _labelled_report(d)

        return make

    label_cases = {
        "not CSV": b"\x00\x01\x02 garbage",
        "no header": b"e1,alice\n",
        "unknown event id": b"event_id,truth\nnope,alice\n",
        "duplicate rows that disagree": b"event_id,truth\ne1,alice\ne1,impostor\n",
        "not UTF-8": b"event_id,truth\ne1,\xff\xfe\n",
        "a truth with escapes": b"event_id,truth\ne1,\x1b[31mred\n",
        "a huge field": b"event_id,truth\ne1," + b"a" * (5 << 20) + b"\n",
        "extra columns": b"event_id,truth,x,y\ne1,alice,1,2\n",
    }
    for name, body in label_cases.items():
        yield Case(f"labels: {name}", "labels", labels(body), program="report")


def _cli_cases() -> Iterator[Case]:
    simple: dict[str, Callable[[Path, World], list[str]]] = {
        "users remove without a name": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "users",
            "remove",
        ],
        "users remove nobody": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "users",
            "remove",
            "mallory",
        ],
        "users rename with one name": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "users",
            "rename",
            "alice",
        ],
        "users rename onto an existing name": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "users",
            "rename",
            "alice",
            "alice",
        ],
        "enroll a path as a name": lambda d, w: [
            "-c",
            str(w.door(d)),
            "enroll",
            "../../etc/passwd",
            str(w.face()),
        ],
        "enroll a name with escapes": lambda d, w: [
            "-c",
            str(w.door(d)),
            "enroll",
            "\x1b[31mx",
            str(w.face()),
        ],
        "enroll an empty name": lambda d, w: ["-c", str(w.door(d)), "enroll", "", str(w.face())],
        "enroll a 10 kB name": lambda d, w: [
            "-c",
            str(w.door(d)),
            "enroll",
            "a" * 10000,
            str(w.face()),
        ],
        "embed --npy into a directory": lambda d, w: ["embed", str(w.face()), "--npy", str(d)],
        "embed --npy into a missing folder": lambda d, w: [
            "embed",
            str(w.face()),
            "--npy",
            str(d / "no" / "x.npy"),
        ],
        "compare with one image missing": lambda d, w: [
            "compare",
            str(w.face()),
            str(d / "none.jpg"),
        ],
        "unknown command": lambda d, w: ["frobnicate"],
        "no command": lambda d, w: [],
        "models fetch an unknown name": lambda d, w: [
            "models",
            "fetch",
            "nonesuch",
            "--dir",
            str(d),
        ],
        "relay-off where there is no GPIO": lambda d, w: ["-c", str(w.door(d)), "relay-off"],
        "run where there is no GPIO": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "run",
            "--replay",
            str(w.replay(d)),
        ],
        "run with no gallery": lambda d, w: [
            "-c",
            str(w.door(d)),
            "run",
            "--mock-gpio",
            "--replay",
            str(w.replay(d)),
        ],
        "run on a missing replay": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "run",
            "--mock-gpio",
            "--replay",
            str(d / "none"),
        ],
        "run on an empty replay": lambda d, w: [
            "-c",
            str(w.enrolled_door(d)),
            "run",
            "--mock-gpio",
            "--replay",
            str(made_dir(d / "empty")),
        ],
    }
    for name, make in simple.items():
        yield Case(
            f"cli: {name}",
            "cli",
            make,
            ok_codes=frozenset(c for c in ExitCode if c != ExitCode.FAILURE),
        )

    def log_in_a_files_place(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        (d / "f").write_text("")
        cfg.write_text(
            cfg.read_text().replace(str(d / "decisions.jsonl"), str(d / "f" / "decisions.jsonl"))
        )
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d))]

    yield Case("run: the decision log's folder is a file", "cli", log_in_a_files_place)

    def log_symlink(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        victim = d / "victim.txt"
        victim.write_text("precious")
        (d / "decisions.jsonl").symlink_to(victim)
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d))]

    yield Case("run: the decision log a symlink", "cli", log_symlink)

    def log_folder_unwritable(d: Path, w: World) -> list[str]:
        cfg = w.enrolled_door(d)
        # /sys takes no new file, even from root (a chmod'ed folder would not stop root).
        cfg.write_text(
            cfg.read_text().replace(str(d / "decisions.jsonl"), "/sys/facegate-decisions.jsonl")
        )
        return ["-c", str(cfg), "run", "--mock-gpio", "--replay", str(w.replay(d))]

    yield Case(
        "run: the decision log's folder cannot be written",
        "cli",
        log_folder_unwritable,
        ok_codes=frozenset({ExitCode.LOG}),
    )


def _labelled_report(d: Path) -> list[str]:
    """tools/report on d's decisions.jsonl with its labels.csv, every output written."""
    return [
        str(d / "decisions.jsonl"),
        "--labels",
        str(d / "labels.csv"),
        "--outdir",
        str(d / "out"),
        "-q",
    ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def _imwrite(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


def _link(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def summary(
    title: str, results: Sequence[tuple[Any, str | None]], *, show_kind: bool = False
) -> tuple[int, str]:
    """(cases broken, the suite's report: ``<title>: N tried, M broke (kind n, ...)`` and a
    BROKE line per broken case); a result is (a case with ``name`` and ``kind``, why it broke)."""
    broke = [(c, why) for c, why in results if why is not None]
    by_kind: dict[str, int] = {}
    for c, _ in results:
        by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
    lines = [
        f"{title}: {len(results)} tried, {len(broke)} broke "
        f"({', '.join(f'{k} {v}' for k, v in by_kind.items())})"
    ]
    lines += [f"  BROKE {f'[{c.kind}] ' if show_kind else ''}{c.name}: {why}" for c, why in broke]
    return len(broke), "\n".join(lines)


def cases() -> list[Case]:
    return [
        *_config_cases(),
        *_image_cases(),
        *_gallery_cases(),
        *_card_cases(),
        *_liveness_cases(),
        *_log_cases(),
        *_cli_cases(),
    ]
