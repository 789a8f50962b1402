"""What the command-line scripts share: one-line errors and their exit statuses.

Exit status 2: a usage error (bad flags, settings, folders, files); 1: a run or a write
that broke; 130: interrupted (Ctrl-C); 143: stopped by SIGTERM (``kill``, a batch system's
stop). Every error is one line; an unexpected exception (a bug) too, with its traceback on
request (HEBBIAN_TRACEBACK=1).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Callable, Iterator, NoReturn

import es
from es.errors import first_line  # noqa: F401  (re-exported for the scripts)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the command winds down as after Ctrl-C (see `sigterm_as_interrupt`)."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` in the main thread.

    By default SIGTERM ends Python at once, skipping ``finally`` blocks: a local Ray's
    processes were left to notice the driver gone, and Ray's own C++ handler, where
    ``ray.init`` installed one, printed a stack dump that reads like a crash. Raised as an
    exception, the stop unwinds like Ctrl-C: a save it cuts short leaves the file as it was
    (every save writes a temporary file and renames it), Ray is shut down, and the command
    prints one line. Outside the main thread (where Python cannot set handlers) it does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interrupted_status(e: KeyboardInterrupt) -> tuple[int, str]:
    """Exit status and the word for how a command was stopped: 143 ``terminated`` (SIGTERM)
    or 130 ``interrupted`` (Ctrl-C), as a shell reports the signals."""
    return (143, "terminated") if isinstance(e, Terminated) else (130, "interrupted")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (what is wrong, where to look), not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see --help\n")


def exit_unexpected(parser: argparse.ArgumentParser, e: Exception) -> NoReturn:
    """Exit 1 with one line for an exception nothing foresaw, or re-raise it with HEBBIAN_TRACEBACK=1."""
    if os.environ.get("HEBBIAN_TRACEBACK"):
        raise e
    parser.exit(1, f"{parser.prog}: error: unexpected {type(e).__name__}: {first_line(e)} "
                   "(set HEBBIAN_TRACEBACK=1 for the traceback and please report it)\n")


def run_command(parser: argparse.ArgumentParser, body: Callable[[], int]) -> int:
    """Run a command's `body` and return its exit status; every error becomes one line:
    es.UsageError -> 2, es.ESError or OSError -> 1, Ctrl-C -> 130, SIGTERM -> 143, anything
    else -> 1 (`exit_unexpected`)."""
    try:
        with sigterm_as_interrupt():
            return body()
    except es.UsageError as e:  # bad flags, folders, files, settings
        parser.exit(2, f"{parser.prog}: error: {first_line(e)}\n")
    except es.ESError as e:  # the work broke, or its output could not be written
        parser.exit(1, f"{parser.prog}: error: {first_line(e)}\n")
    except KeyboardInterrupt as e:
        status, word = interrupted_status(e)
        print(f"{parser.prog}: {word}", file=sys.stderr)
        return status
    except OSError as e:  # reading or writing failed in a way nothing above foresaw
        parser.exit(1, f"{parser.prog}: error: {first_line(e)}\n")
    except Exception as e:  # a bug: still one line, the traceback on request
        exit_unexpected(parser, e)


def run_script(build_parser: Callable[[], argparse.ArgumentParser], check_args: Callable[[argparse.Namespace], None],
               execute: Callable[[argparse.Namespace], int], argv: list[str] | None = None) -> int:
    """A script's `main`: parse `argv`, check the arguments, execute; errors as in `run_command`."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def body() -> int:
        check_args(args)
        return execute(args)

    return run_command(parser, body)
