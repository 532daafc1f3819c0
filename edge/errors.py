"""The facegate exception tree and the process exit codes.

Every error facegate raises on purpose derives from :class:`FacegateError` and
from the builtin it most resembles, so callers may catch either.  The CLI turns
any of them into one line on stderr and the matching :class:`ExitCode`.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes: stable, documented in the README."""

    OK = 0
    FAILURE = 1  # an unexpected error (a bug): the door stays locked
    USAGE = 2  # bad command line (argparse's own code)
    CONFIG = 3
    MODEL = 4
    IMAGE = 5
    NO_FACE = 6
    GALLERY = 7
    CAMERA = 8
    PARITY = 9  # a converted model failed its parity gate
    LOG = 10
    DATA = 11  # a labels, pairs or other input data file is malformed (workstation tools)
    BUSY = 12  # another facegate process holds the lock (a second daemon on one door, or a gallery writer)
    GPIO = 13  # no GPIO here (no pin factory: not a Pi, or lgpio missing) or a pin that cannot be driven


class FacegateError(Exception):
    """Root of every error facegate raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE


class UsageError(FacegateError, ValueError):
    """The command line asks for something that cannot be done as given."""

    exit_code = ExitCode.USAGE


class ConfigError(FacegateError, ValueError):
    """The configuration file is unreadable or invalid."""

    exit_code = ExitCode.CONFIG


class ModelError(FacegateError, ValueError):
    """A model file or its card is missing, corrupt, or of the wrong shape."""

    exit_code = ExitCode.MODEL


class ModelFetchError(ModelError):
    """A model could not be fetched from its wheel, or its sha256 did not match."""


class RuntimeUnavailable(ModelError, ImportError):
    """No TFLite runtime (or not the one asked for) is installed."""


class ImageError(FacegateError, ValueError):
    """An image file could not be read or decoded."""

    exit_code = ExitCode.IMAGE


class NoFaceError(FacegateError, LookupError):
    """An image holds no face that passes the detector's gates."""

    exit_code = ExitCode.NO_FACE


class GalleryError(FacegateError, ValueError):
    """The enrolled-faces gallery is missing, corrupt, or from another model."""

    exit_code = ExitCode.GALLERY


class CameraError(FacegateError, OSError):
    """The camera could not be opened or stopped delivering frames."""

    exit_code = ExitCode.CAMERA


class ParityError(FacegateError, ArithmeticError):
    """A converted model verifies faces worse than its source allows."""

    exit_code = ExitCode.PARITY


class DecisionLogError(FacegateError, OSError):
    """The decision log could not be written or read."""

    exit_code = ExitCode.LOG


class GPIOError(FacegateError, OSError):
    """The GPIO pins cannot be reached: no pin factory (not a Pi, lgpio missing) or a pin in use."""

    exit_code = ExitCode.GPIO


class LockError(FacegateError, OSError):
    """A lock file could not be taken: another facegate process holds it, or it cannot be opened."""

    exit_code = ExitCode.BUSY


class DataError(FacegateError, ValueError):
    """Workstation input data (labels, pairs, a dataset folder) is missing or malformed."""

    exit_code = ExitCode.DATA
