"""Imported first by every script here: the project's packages must be this checkout's.

Ray's workers import ``hebbian``, ``es`` and ``envs`` from the installed package, not from the
script's folder, so a script run from one clone while ``pip install -e`` points at another
would mix two versions of the code silently (the driver's and the workers'), and a script run
before any install would end in a ModuleNotFoundError traceback. Both end here instead, in one
line with the command that fixes them (exit status 2, as for any usage error).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALL = f'pip install torch==2.13.0 -e "{ROOT}"'


def installed_checkout() -> Path | None:
    """The folder holding the importable ``hebbian`` package (None when none is importable)."""
    spec = importlib.util.find_spec("hebbian")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve().parents[1]


def problem() -> str | None:
    """One line saying what is wrong with the installed package, or None when it is this checkout's.

    A package installed into site-packages (``pip install .``, not ``-e``) is accepted: only another
    checkout of this project (a folder with its own ``scripts/evolve.py``, however old) is refused,
    since that is the silent mix-up.
    """
    installed = installed_checkout()
    if installed is None:
        return f"the hebbian package is not installed; run {INSTALL} (README: the two set-up commands)"
    if installed != ROOT and (installed / "scripts" / "evolve.py").exists():
        return (f"these scripts are in {ROOT}, but the installed hebbian package is the checkout {installed}; "
                f"run {INSTALL} to use this one")
    return None


_problem = problem()
if _problem is not None:
    print(f"error: {_problem}", file=sys.stderr)
    sys.exit(2)
