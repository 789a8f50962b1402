"""The compiled kernels give the same numbers whatever vector instructions the CPU has.

Numba compiles for the CPU it runs on, so a Ray cluster of mixed machines runs the same
kernels as different machine code (AVX-512, AVX2, SSE2). A run stays the same run on
every node only if that cannot change a result: no kernel lets LLVM reorder a sum (no
fastmath), and the CNN's multiply-adds are explicit fused ones (a library call where the
CPU has no FMA instruction, with the same rounding). Here one process compiles for this
CPU and another for a generic x86-64 (SSE2, no FMA, through NUMBA_CPU_NAME), both real
subprocesses, and what they compute must agree bit for bit: the paper's CarRacing agent
(area resize, CNN, plastic layers, action head) playing Gymnasium's own frames, and the
ES noise table's gradient, PGPE and perturbation kernels, and the static network's step
(the quadruped's and CarRacing's stacks), and the portable float32 tanh
(`hebbian.portable_math.tanh32`, the CNN's) on a spread of values.

A control kernel with fastmath shows that the generic build really is different machine
code (its vectorised sum rounds differently), so the equality above means something.
Not covered: what NumPy and the C library compute, which both processes here share (NumPy
picks its SIMD loops by the real CPU, which is why the CNN's tanh is no longer NumPy's).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = r"""
import hashlib, json
import numpy as np
from numba import njit
from es import noise_table
from hebbian.agent import AgentProblem, run_episode
from hebbian.config import AgentConfig


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@njit(fastmath=True)
def fast_dot(a, b):  # the control: a reduction LLVM may reorder, by the vector width
    s = np.float32(0)
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


out = {}
problem = AgentProblem("CarRacing-v3", AgentConfig(encoder="cnn"),
                       env_options={"neg_reward_limit": None, "frame_size": 84, "exact_env": True})
policy = problem.policy
policy.set_params(problem.initial_params(3) * np.float32(0.3))
actions = []
ret, _ = run_episode(problem.envs[0], policy, seed=11, max_steps=40,
                     on_step=lambda obs, action, reward: actions.append(np.asarray(action, np.float32)))
out["agent"] = digest(np.stack(actions), np.float64(ret))

from hebbian.network import StaticNetwork
outputs = []
for sizes, out_act in (((28, 128, 64, 8), "tanh"), ((648, 128, 64, 3), "linear")):
    static = StaticNetwork(sizes, output_activation=out_act)
    static.set_params(np.random.default_rng(1).standard_normal(static.num_params).astype(np.float32) * np.float32(0.1))
    for x in np.random.default_rng(2).uniform(-1, 1, (20, sizes[0])).astype(np.float32):
        outputs.append(static.step(x).copy())
out["static"] = digest(*outputs)

values = noise_table.build(noise_table.NoiseTable(seed=5, size=2**20))
rng = np.random.default_rng(0)
offsets = rng.integers(0, 2**20 - 5000, 64)
w = rng.standard_normal(64).astype(np.float32)
centre = rng.standard_normal(5000).astype(np.float32)
out["noise"] = digest(noise_table.weighted_sum(values, offsets, w, 5000),
                      *noise_table.weighted_sums_and_squares(values, offsets, w, w[::-1].copy(), 5000),
                      noise_table.perturb(centre, np.float32(0.1), values, int(offsets[0]), -1))

from hebbian.portable_math import tanh32_inplace
spread = np.concatenate([np.random.default_rng(3).standard_normal(100_000).astype(np.float32) * np.float32(3),
                         np.array([0.0, -0.0, 1e-30, 8.99, 9.0, 9.5, np.inf, -np.inf, np.nan], np.float32)])
tanh32_inplace(spread)
out["tanh"] = digest(spread)

a, b = (np.random.default_rng(s).standard_normal(100_003).astype(np.float32) for s in (1, 2))
out["control"] = float(fast_dot(a, b))
print(json.dumps(out))
"""


def _probe(**env_vars) -> dict:
    env = {**os.environ, **env_vars}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kernels_agree_bit_for_bit_across_vector_instruction_sets(tmp_path):
    host = _probe()
    # Its own Numba cache folder: the generic build is neither taken from nor left in this machine's.
    generic = _probe(NUMBA_CPU_NAME="generic", NUMBA_CPU_FEATURES="+sse2", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    if host["control"] == generic["control"]:
        pytest.skip("this CPU's build vectorises like the generic one (no AVX); nothing to compare")
    assert host["agent"] == generic["agent"]
    assert host["static"] == generic["static"]
    assert host["noise"] == generic["noise"]
    assert host["tanh"] == generic["tanh"]
