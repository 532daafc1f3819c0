"""The converted model's card, and the build key that lets an unchanged conversion be reused.

The card tells the device how to feed the model (input, crop, normalisation)
and what it returns (an embedding, or one liveness logit); the device refuses a
.tflite without a card whose sha256 matches it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from edge.cards import CARD_SCHEMA, card_path_for
from edge.files import sha256_file
from tools.convert.loading import import_tf
from tools.convert.source import Source

LIVENESS_OUTPUT = {"size": 1, "kind": "logit", "positive": "live"}
_PACKAGE = Path(__file__).resolve().parent


def _code_digest() -> str:
    """The conversion code (every module of tools/convert but the command line), hashed.

    Part of the build key, so changing how a model is converted, cropped or
    gated rebuilds a cached conversion instead of reusing it.
    """
    h = hashlib.sha256()
    for module in sorted(_PACKAGE.glob("*.py")):
        if module.name != "__main__.py":
            h.update(module.name.encode() + b"\0" + module.read_bytes())
    return h.hexdigest()


def build_key(src: Source, mode: str, extra: dict[str, Any]) -> str:
    """A hash of everything that determines the output, to reuse a cached conversion."""
    blob = json.dumps(
        {
            "source": src.sha256,
            "mode": mode,
            "spec": src.spec,
            "extra": extra,
            "code": _code_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def up_to_date(out: Path, key: str) -> bool:
    card = card_path_for(out)
    if not (out.is_file() and card.is_file()):
        return False
    try:
        raw = json.loads(card.read_text())
        return raw.get("build_key") == key and raw.get("sha256") == sha256_file(out)
    except (OSError, ValueError):
        return False


def _output(src: Source) -> tuple[str, dict[str, Any]]:
    """(role, the card's output fields): one liveness logit, or an embedding matched by cosine."""
    spec = src.spec
    if src.task == "liveness":
        return "liveness", {"flip_average": False, "output": dict(LIVENESS_OUTPUT)}
    return "embedder", {
        "flip_average": bool(spec.get("flip_average", True)),
        "embedding": {
            "size": int(spec["embedding_size"]),
            "metric": "cosine",
            "l2_normalize": True,
        },
        "suggested_min_cosine_similarity": spec.get("suggested_min_cosine_similarity"),
    }


def make_card(
    src: Source, mode: str, out_sha: str, size: int, extra: dict[str, Any]
) -> dict[str, Any]:
    tf = import_tf()
    spec = src.spec
    role, output = _output(src)
    return {
        "schema": CARD_SCHEMA,
        "name": src.name,
        "role": role,
        "file": None,  # filled by the caller
        "sha256": out_sha,
        "size_bytes": size,
        "mode": mode,
        "input": {
            "size": list(spec["input_size"]),
            "color": spec.get("color", "RGB"),
            "normalization": spec.get("normalization", {"kind": "prewhiten"}),
            "layout": "NHWC",
        },
        "crop": spec.get("crop", {"method": "landmarks", "margin": 0.0, "rotate": True}),
        **output,
        "source": {"path": str(src.path.name), "format": src.format, "sha256": src.sha256},
        "converter": {
            "tool": "facegate tools/convert",
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
            **extra,
        },
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
