"""Shared fixtures. `ray_session` starts ONE local Ray (2 CPUs) for the whole test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent


@pytest.fixture(scope="session")
def ray_session():
    """A local in-process Ray with 2 CPUs, shut down (never `ray stop`) after the session.

    Workers get the repo and tests/ on PYTHONPATH so that test problems defined in
    tests/*.py (imported by pytest as top-level modules) unpickle inside actors.
    """
    ray = pytest.importorskip("ray")
    path = os.pathsep.join(p for p in (str(TESTS_DIR), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield ray
    finally:
        ray.shutdown()
