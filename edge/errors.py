"""One small error hierarchy for the whole library.

Every failure the library reports to a person is a :class:`FaceproError`: its message is
one line naming the file, key or argument, and its ``exit_code`` says how the command line
ends (1: the operation failed, 2: the input was bad). Only ``edge.cli`` turns these into
exit codes, in one place.
"""
from __future__ import annotations

FAILED = 1
BAD_INPUT = 2


class FaceproError(Exception):
    """An operation failed; ``exit_code`` is 1 unless the class or the raiser says 2."""

    exit_code: int = FAILED

    def __init__(self, message: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInput(FaceproError):
    """The input was unusable: settings, arguments, files or names given by a person."""

    exit_code = BAD_INPUT
