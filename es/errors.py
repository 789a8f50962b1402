"""Exceptions of the `es` package; every message is one line that says what is wrong and what to do.

A command-line face maps them to exit statuses::

    try:
        ...
    except es.UsageError as e:      # bad sizes, bad folders, damaged checkpoints, folder in use, no room
        sys.exit(f"error: {e}")     # -> exit status 2 (use parser.exit(2, ...))
    except es.ESError as e:         # a run that broke (NaN fitness, a crashing problem, disk full)
        ...                         # -> exit status 1
"""
from __future__ import annotations


class ESError(Exception):
    """Base class of every error `es` raises on purpose."""


class UsageError(ESError, ValueError):
    """The caller asked for something impossible (bad size, odd antithetic population,
    not a run folder, ...). A CLI turns it into exit status 2."""


class ResourceError(UsageError):
    """A machine or Ray node lacks room for what the run needs: memory for the noise table, or
    space for it in Ray's object store. The line says which and what to change; nothing saved is lost."""


class CheckpointError(UsageError):
    """A checkpoint (or best.npz) is missing, unreadable, fails its checksum, holds the wrong
    content (centre of the wrong size, NaN, a bad generation count) or belongs to another run.

    `path` names the damaged file so the message can tell the user which one to remove.
    """

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class StorageError(ESError):
    """A running evolve could not write its run folder (disk full, read-only, no permission).

    Everything saved before stays valid: free space (or make the folder writable) and resume.
    A folder found unwritable before the first generation is a UsageError instead.
    """


class EvaluationError(ESError, RuntimeError):
    """Evaluation failed: the problem raised, returned a non-finite fitness, or workers kept dying."""


def first_line(e: BaseException, with_filename: bool = True) -> str:
    """An error as one line for people: an OSError as "FILE: reason" (just "reason" without
    `with_filename`), anything else the first line of its message (or its type's name)."""
    if isinstance(e, OSError) and e.strerror:
        return (f"{e.filename}: " if with_filename and e.filename else "") + e.strerror
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
