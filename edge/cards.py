"""Model cards: what the device must know to feed a converted model, stored beside its .tflite.

In: ``<model>.tflite.card.json`` (written by tools/convert).  Out: a checked :class:`ModelCard`
(input size, colour order, normalisation, the :class:`CropRecipe`, the model's sha256), or one
ModelError line naming the card and the field.  A gallery is bound to the card's
:func:`preprocessing_digest`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ModelError
from edge.files import atomic_write_bytes, refuse_world_writable, sha256_file

log = logging.getLogger(__name__)

CARD_SCHEMA = 1
CARD_SUFFIX = ".card.json"
CARD_ROLES = ("embedder", "liveness")


CROP_METHODS = ("box", "landmarks", "template", "patch")


@dataclass(frozen=True)
class CropRecipe:
    """How to cut the embedder's input out of a frame (see edge.align).

    method: "box" (the detector's box), "landmarks" (a box derived from the
    eyes and mouth), "template" (a similarity warp of named landmarks onto
    fixed points of the output, as ArcFace-style models were trained) or
    "patch" (an anti-spoofing model's context patch: the detector's box reshaped
    to the box its makers' detector drew, widened ``scale`` times about its
    centre, kept inside the frame, and stretched to the input; see edge.align);
    margin: fraction of the face size added on every side;
    rotate: level the eyes first; shift: move the crop down by this fraction
    (for "patch": the box's centre, by this fraction of the box's height);
    aspect: height / width of the region cut (its width shrinks as aspect grows);
    box_width, box_height: "patch" only, the detector's box width and height times these;
    template: landmark name -> (x, y) in output pixels (method "template" only).
    """

    method: str = "landmarks"
    margin: float = 0.0
    rotate: bool = True
    shift: float = 0.0
    scale: float = 1.0
    aspect: float = (
        1.0  # crop height / width; >1 is taller, stretched to the model's input like MTCNN's boxes
    )
    template: tuple[tuple[str, float, float], ...] = ()
    box_width: float = 1.0
    box_height: float = 1.0

    @property
    def landmarks(self) -> tuple[str, ...]:
        """The landmark names this recipe needs from the detector."""
        if self.method == "patch":
            return ()
        if self.method == "template":
            return tuple(name for name, _, _ in self.template)
        if self.method == "landmarks":
            return ("right_eye", "left_eye", "mouth")
        return ("right_eye", "left_eye") if self.rotate else ()  # a box levelled by the eye line

    @staticmethod
    def from_dict(d: dict[str, Any], where: str = "crop") -> CropRecipe:
        """The recipe in a card or spec; ValueError naming the field when a value cannot be used."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
        method = str(d.get("method", "landmarks"))
        if method not in CROP_METHODS:
            raise ValueError(
                f"{where}.method: must be one of {', '.join(CROP_METHODS)}, got {method!r}"
            )
        template: list[tuple[str, float, float]] = []
        if method == "template":
            raw = d.get("template")
            if not isinstance(raw, dict) or len(raw) < 2:
                raise ValueError(
                    f"{where}.template: expected an object of at least 2 landmark name -> [x, y]"
                )
            for name, xy in raw.items():
                if not (isinstance(xy, list) and len(xy) == 2 and all(_finite(v) for v in xy)):
                    raise ValueError(
                        f"{where}.template.{name}: expected [x, y] in output pixels, got {xy!r}"
                    )
                template.append((str(name), float(xy[0]), float(xy[1])))
            pts = np.array([(x, y) for _, x, y in template])
            if float(np.ptp(pts, axis=0).max()) < 1.0:
                raise ValueError(f"{where}.template: the points coincide")
        recipe = CropRecipe(
            method=method,
            margin=float(d.get("margin", 0.0)),
            rotate=bool(d.get("rotate", True)),
            shift=float(d.get("shift", 0.0)),
            scale=float(d.get("scale", 1.0)),
            aspect=float(d.get("aspect", 1.0)),
            template=tuple(template),
            box_width=float(d.get("box_width", 1.0)),
            box_height=float(d.get("box_height", 1.0)),
        )
        for key, lo, hi in (
            ("margin", -0.4, 2.0),
            ("shift", -1.0, 1.0),
            ("scale", 0.1, 10.0),
            ("aspect", 0.2, 5.0),
            ("box_width", 0.2, 5.0),
            ("box_height", 0.2, 5.0),
        ):
            value = getattr(recipe, key)
            # "not lo <= value" also refuses NaN
            if not lo <= value <= hi:
                raise ValueError(f"{where}.{key}: must be between {lo:g} and {hi:g}, got {value!r}")
        return recipe

    def as_dict(self) -> dict[str, Any]:
        """The recipe as a card holds it (what a gallery's templates are bound to)."""
        if self.method == "template":
            return {"method": "template", "template": {n: [x, y] for n, x, y in self.template}}
        if self.method == "patch":
            return {
                "method": "patch",
                "scale": self.scale,
                "box_width": self.box_width,
                "box_height": self.box_height,
                "shift": self.shift,
            }
        return {
            "method": self.method,
            "margin": self.margin,
            "rotate": self.rotate,
            "shift": self.shift,
            "scale": self.scale,
            "aspect": self.aspect,
        }


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class ModelCard:
    """What the device must know to use a model, stored beside its .tflite.

    ``role`` is "embedder" (``embedding_size`` is the vector length) or
    "liveness" (a presentation-attack classifier: ``embedding_size`` is its
    output size, 1, a logit for "live"; its card has ``output`` instead of
    ``embedding``).  Each consumer refuses a card of the other role.
    """

    path: Path  # the .tflite file
    sha256: str
    input_size: tuple[int, int]  # (height, width)
    color: str  # "RGB" or "BGR"
    normalization: dict[str, Any]
    embedding_size: int
    crop: CropRecipe
    flip_average: bool = True
    metric: str = "cosine"
    suggested_min_cosine_similarity: float | None = None
    mode: str = "float32"
    role: str = "embedder"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def preprocessing(self) -> dict[str, Any]:
        """Everything besides the weights that decides an embedding: a gallery is bound to it."""
        return {
            "input_size": list(self.input_size),
            "color": self.color,
            "normalization": {k: self.normalization[k] for k in sorted(self.normalization)},
            "crop": self.crop.as_dict(),
            "flip_average": self.flip_average,
        }


def preprocessing_digest(preprocessing: dict[str, Any] | None) -> str:
    """A short stable digest of a card's preprocessing ("" for none, as in tests' synthetic embeddings)."""
    if not preprocessing:
        return ""
    blob = json.dumps(preprocessing, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def card_path_for(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.name + CARD_SUFFIX)


def load_card(model_path: str | Path, *, verify: bool = True) -> ModelCard:
    """Read and check the card beside ``model_path``; refuse it on any doubt."""
    model_path = Path(model_path)
    card_file = card_path_for(model_path)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    refuse_world_writable(model_path, "model", ModelError)
    refuse_world_writable(card_file, "model card", ModelError)
    try:
        raw = json.loads(card_file.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{card_file}: model card missing; convert the model with tools/convert"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_file}: unreadable model card: {exc}") from None
    try:
        card = _card_from_json(raw, model_path)
    except _CardFieldError as exc:
        raise ModelError(f"{card_file}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{card_file}: malformed model card: missing or bad field {exc}") from None
    if verify:
        got = sha256_file(model_path)
        if got != card.sha256:
            raise ModelError(
                f"{model_path}: sha256 {got[:16]}… does not match its card "
                f"({card.sha256[:16]}…): corrupt or replaced"
            )
    return card


class _CardFieldError(Exception):
    """A card field with a value the device cannot use; str() is "field: why"."""


def _input_from_json(inp: dict[str, Any]) -> tuple[tuple[int, int], str, dict[str, Any]]:
    """The card's ``input``: (height, width), colour order, normalisation."""
    h, w = (int(v) for v in inp["size"])
    color = str(inp["color"]).upper()
    if color not in ("RGB", "BGR"):
        raise _CardFieldError(f"input.color: must be RGB or BGR, got {color!r}")
    norm = dict(inp["normalization"])
    if norm.get("kind") not in ("prewhiten", "fixed"):
        raise _CardFieldError(
            f"input.normalization.kind: must be prewhiten or fixed, got {norm.get('kind')!r}"
        )
    if norm["kind"] == "fixed":
        for key, default in (("mean", 0.0), ("std", 1.0)):
            value = norm.get(key, default)
            if not _finite(value) or (key == "std" and value <= 0):
                raise _CardFieldError(
                    f"input.normalization.{key}: must be a finite number"
                    f"{' above 0' if key == 'std' else ''}, got {value!r}"
                )
    if not (16 <= h <= 1024 and 16 <= w <= 1024):
        raise _CardFieldError(f"input.size: must be 16-1024 pixels a side, got {[h, w]}")
    return (h, w), color, norm


def _output_from_json(raw: dict[str, Any], role: str) -> tuple[int, str]:
    """(output size, metric): an embedder's vector, or a liveness model's one logit."""
    if role == "liveness":
        out = raw["output"]
        if out.get("kind") != "logit" or int(out["size"]) != 1:
            raise _CardFieldError(
                f"output: a liveness model gives one logit (kind logit, size 1), got {out!r}"
            )
        return 1, "logit"
    return int(raw["embedding"]["size"]), str(raw["embedding"].get("metric", "cosine"))


def _card_from_json(raw: Any, model_path: Path) -> ModelCard:
    if not isinstance(raw, dict):
        raise _CardFieldError(f"expected an object, got {type(raw).__name__}")
    if raw.get("schema") != CARD_SCHEMA:
        raise _CardFieldError(f"schema: expected {CARD_SCHEMA}, got {raw.get('schema')!r}")
    size_hw, color, norm = _input_from_json(raw["input"])
    try:
        crop = CropRecipe.from_dict(raw.get("crop", {}))
    except ValueError as exc:
        raise _CardFieldError(str(exc)) from None
    role = str(raw.get("role", "embedder"))
    if role not in CARD_ROLES:
        raise _CardFieldError(f"role: must be one of {', '.join(CARD_ROLES)}, got {role!r}")
    size, metric = _output_from_json(raw, role)
    return ModelCard(
        path=model_path,
        sha256=str(raw["sha256"]),
        input_size=size_hw,
        color=color,
        normalization=norm,
        embedding_size=size,
        crop=crop,
        flip_average=bool(raw.get("flip_average", role == "embedder")),
        metric=metric,
        suggested_min_cosine_similarity=raw.get("suggested_min_cosine_similarity"),
        mode=str(raw.get("mode", "float32")),
        role=role,
        raw=raw,
    )


def write_card(model_path: str | Path, card: dict[str, Any]) -> Path:
    """Write ``card`` (a dict in the card schema) beside ``model_path``, atomically."""
    path = card_path_for(model_path)
    atomic_write_bytes(path, (json.dumps(card, indent=2, sort_keys=False) + "\n").encode())
    return path
