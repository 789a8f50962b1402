"""Exceptions of the `es` package; every message is one line that says what is wrong and what to do.

A command-line face maps them to exit statuses::

    try:
        ...
    except es.UsageError as e:      # bad sizes, bad folders, damaged checkpoints
        sys.exit(f"error: {e}")     # -> exit status 2 (use parser.exit(2, ...))
    except es.ESError as e:         # a run that broke (NaN fitness, a crashing problem)
        ...                         # -> exit status 1
"""
from __future__ import annotations


class ESError(Exception):
    """Base class of every error `es` raises on purpose."""


class UsageError(ESError, ValueError):
    """The caller asked for something impossible (bad size, odd antithetic population,
    not a run folder, ...). A CLI turns it into exit status 2."""


class CheckpointError(UsageError):
    """A checkpoint (or best.npz) is missing, unreadable or fails its checksum.

    `path` names the damaged file so the message can tell the user which one to remove.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class EvaluationError(ESError, RuntimeError):
    """Evaluation failed: the problem raised, returned a non-finite fitness, or workers kept dying."""
