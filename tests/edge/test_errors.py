import pytest

from edge import errors
from edge.errors import ExitCode, FacegateError

BUILTINS = {
    errors.ConfigError: ValueError,
    errors.ModelError: ValueError,
    errors.ModelFetchError: ValueError,
    errors.RuntimeUnavailable: ImportError,
    errors.ImageError: ValueError,
    errors.NoFaceError: LookupError,
    errors.GalleryError: ValueError,
    errors.CameraError: OSError,
    errors.ParityError: ArithmeticError,
    errors.DecisionLogError: OSError,
}


@pytest.mark.parametrize("cls,builtin", BUILTINS.items())
def test_every_error_is_a_facegate_error_and_a_builtin(cls, builtin):
    exc = cls("x")
    assert isinstance(exc, FacegateError)
    assert isinstance(exc, builtin)
    assert exc.exit_code != ExitCode.OK


def test_exit_codes_are_distinct():
    values = [c.value for c in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.USAGE == 2  # argparse's own
