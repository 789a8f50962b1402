"""Shared fixtures. `ray_session` starts ONE local Ray (2 CPUs) for the whole test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Property tests draw random shapes and values. In CI (CI=true) they draw the same examples on
# every run (derandomize), so a CI result can be reproduced and never turns red by chance;
# elsewhere every run explores new examples, which is how a failing case gets found (and then
# pinned with @example).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


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


@pytest.fixture
def sse2_smoothscale():
    """Skip unless pygame shrinks with its SSE2 filters (its choice on x86-64).

    envs.car_racing_raster reproduces exactly those; on other CPUs FastCarRacing draws
    with pygame instead, which the equality tests cover.
    """
    import pygame

    pygame.init()
    backend = pygame.transform.get_smoothscale_backend()
    if backend != "SSE2":
        pytest.skip(f"smoothscale backend is {backend}, not SSE2")
