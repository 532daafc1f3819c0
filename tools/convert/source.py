"""The model to convert: where it is, its format, and what the device must know to feed it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.convert import ConvertError

# Source format -> its file suffixes (a SavedModel is a directory): the one list of formats,
# which tools/convert/loading.py loads (a test holds the two equal).
FORMATS: dict[str, tuple[str, ...]] = {
    "keras-h5": (".h5", ".hdf5"),
    "keras": (".keras",),
    "saved-model": (),
    "frozen-graph": (".pb",),
    "onnx": (".onnx",),
}
TASKS = ("embedding", "liveness")


@dataclass(frozen=True)
class Source:
    """A model to convert and what the device must know to feed it.

    ``spec["task"]`` is "embedding" (the default; needs ``embedding_size``) or
    "liveness" (one logit, positive = live face).
    """

    path: Path
    format: str
    name: str
    sha256: str
    spec: dict[str, Any]
    tensors: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> str:
        task = self.spec.get("task", "embedding")
        if task not in TASKS:
            raise ConvertError(
                f"{self.path}: spec task: must be one of {', '.join(TASKS)}, got {task!r}"
            )
        return task

    @property
    def input_size(self) -> tuple[int, int]:
        h, w = (int(v) for v in self.spec["input_size"])
        return h, w


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved-model"
        raise ConvertError(f"{path}: a directory without saved_model.pb is not a SavedModel")
    suffix = path.suffix.lower()
    for fmt, suffixes in FORMATS.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(x for suffixes in FORMATS.values() for x in suffixes)
    raise ConvertError(
        f"{path}: unknown model format {suffix or '(no suffix)'!r}; "
        f"expected {known} or a SavedModel directory"
    )


def source_size(path: Path) -> int:
    """Bytes on disk: the file, or every file of a SavedModel directory."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
