"""numba_cache: a cached compiled function is recompiled when a module it uses changes.

Real subprocesses on a real package written to disk: `use.py` caches a function that calls
one of `helper.py`, then only `helper.py` is edited. With the package tracked the next process
computes the new value; an untracked copy shows Numba's own stamps keeping the old machine code
(so the first check means something).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

INIT_TRACKED = "import numba_cache\nnumba_cache.track(__path__[0])\n"
HELPER = "from numba import njit\n\n@njit(cache=True)\ndef value():\n    return {}\n"
USE = ("from numba import njit\nfrom {pkg}.helper import value\n\n"
       "@njit(cache=True)\ndef twice():\n    return 2 * value()\n")


def _write_package(root: Path, name: str, tracked: bool) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(INIT_TRACKED if tracked else "")
    (pkg / "helper.py").write_text(HELPER.format(1))
    (pkg / "use.py").write_text(USE.format(pkg=name))


def _twice(root: Path, name: str) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", f"from {name}.use import twice; print(twice())"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300, check=True)
    return int(out.stdout.strip())


def test_an_edit_to_a_used_module_recompiles_the_cached_function(tmp_path):
    _write_package(tmp_path, "tracked_pkg", tracked=True)
    _write_package(tmp_path, "plain_pkg", tracked=False)
    for name in ("tracked_pkg", "plain_pkg"):
        assert _twice(tmp_path, name) == 2
        assert list((tmp_path / name / "__pycache__").glob("use.twice-*.nbi"))  # really cached
        (tmp_path / name / "helper.py").write_text(HELPER.format(5))  # use.py untouched
    assert _twice(tmp_path, "tracked_pkg") == 10
    assert _twice(tmp_path, "plain_pkg") == 2  # Numba alone: the stale machine code runs
