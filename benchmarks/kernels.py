"""Microseconds per network step: this project's Numba kernel beside NumPy and PyTorch.

Run from the repository root:  python -m benchmarks.kernels [--repeats 15] [--steps 2000]
Writes benchmarks/results/kernels.json. Everything is measured in one run, on one thread,
the implementations timed in turn within every repeat, so ratios hold even on a noisy
machine. Timings are medians over repeats.

Stacks: CarRacing (648-128-64-3, normalised, the paper's) and quadruped (28-128-64-8,
unnormalised), rule ABCD_lr. Bytes streamed per step = weights read and written + the
kernel's four coefficient runs (eta * A..D) read once; it is set against a copy bandwidth
measured here both for a buffer far larger than the caches (DRAM) and for one of the same
size as the working set (cache).
The whole CarRacing agent step is timed from a real uint8 frame rendered by the env: the
resize to float32 3x84x84 (`envs.car_racing.PixelObservation`, i.e. `area_resize`), the CNN,
the plastic layers with their update and normalisation, and the action head
(`Policy.act`), beside the same step written plainly in PyTorch (its resize on tensors,
as pretraining does it). Each part is also timed alone, in turn with the whole step: the
parts then run with their data warm in the caches, so the step costs more than their sum;
"rest_us" is that difference: ~1-2 us of Python glue between the parts, the rest cache
effects (the plastic layers stream a 2.2 MB working set through a 2 MB L2, so they and the
frame, resize and CNN buffers, ~0.2 MB, evict each other every step). Beside them, the CNN's
tanh on as many values as its pooled conv1 map: NumPy's float32 tanh against the portable
`tanh32` the CNN uses (hebbian/portable_math.py).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import envs  # noqa: E402
from benchmarks.record import write_result  # noqa: E402
from envs.car_racing import PixelObservation, area_resize  # noqa: E402
from hebbian.agent import AgentConfig, Policy  # noqa: E402
from hebbian.encoders.cnn import PaperCNN  # noqa: E402
from hebbian.kernels import NUM_TERMS  # noqa: E402
from hebbian.network import HebbianNetwork  # noqa: E402
from hebbian.portable_math import tanh32_inplace  # noqa: E402
from tests.reference_rule import ReferenceHebbian  # noqa: E402

torch.set_num_threads(1)
RESULTS = Path(__file__).parent / "results" / "kernels.json"
TANH_VALUES = PaperCNN()._planes.size  # the pooled conv1 map (as phase planes) the CNN's first tanh takes


def median_us(fn, steps, repeats):
    """Median over `repeats` of the mean time per call of `fn` over `steps` calls, in microseconds."""
    return interleaved_us([(fn, steps)], repeats)[0]


def interleaved_us(cases, repeats):
    """Median microseconds per call for each (fn, calls) in `cases`, timed in turn within
    every repeat, so a slow moment of a shared machine hits all of them alike."""
    times = [[] for _ in cases]
    for fn, _ in cases:
        fn()
    for _ in range(repeats):
        for (fn, calls), out in zip(cases, times):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            out.append((time.perf_counter() - t0) / calls * 1e6)
    return [float(np.median(t)) for t in times]


def numpy_hebbian(sizes, coeffs_flat, normalize, seed=0):
    """The plain NumPy step (tests/reference_rule.py, the tests' reference) in float32,
    ABCD_lr, from uniform [-0.1, 0.1] weights."""
    rng = np.random.default_rng(seed)
    w0 = [rng.uniform(-0.1, 0.1, (a, b)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    return ReferenceHebbian(sizes, "ABCD_lr", coeffs_flat, w0, normalize, dtype=np.float32)


class TorchHebbian:
    """The same step in PyTorch on one thread, no autograd."""

    def __init__(self, sizes, coeffs_flat, normalize, seed=0):
        ref = numpy_hebbian(sizes, coeffs_flat, normalize, seed)
        self.normalize = normalize
        self.ws = [torch.from_numpy(w.copy()) for w in ref.ws]
        # (A, B, C, D, eta) stacked on the first axis, each term a contiguous (n_in, n_out) plane
        self.cs = [torch.from_numpy(np.ascontiguousarray(np.stack([t[n] for n in ("A", "B", "C", "D", "eta")])))
                   for t in ref.terms]

    @torch.inference_mode()
    def step(self, x):
        acts = [x]
        for i, w in enumerate(self.ws):
            h = acts[-1] @ w
            acts.append(torch.tanh(h) if i < len(self.ws) - 1 else h)
        for i, (w, c) in enumerate(zip(self.ws, self.cs)):
            pre, post = acts[i][:, None], acts[i + 1][None, :]
            w += c[4] * (c[0] * pre * post + c[1] * pre + c[2] * post + c[3])
            if self.normalize:
                w /= w.abs().max()
        return acts[-1]


class TorchCarRacingPolicy:
    """The whole CarRacing policy written plainly in PyTorch (resize, CNN, plastic layers, head)."""

    def __init__(self, flat):
        self.w1 = torch.from_numpy(flat[:162]).view(6, 3, 3, 3)
        self.w2 = torch.from_numpy(flat[162:1362]).view(8, 6, 5, 5)
        self.net = TorchHebbian((648, 128, 64, 3), flat[1362:], normalize=True)

    @torch.inference_mode()
    def act(self, frame):
        """frame: uint8 (96, 96, 3), as the env renders it."""
        x = area_resize(torch.from_numpy(frame).permute(2, 0, 1)[None], 84)
        x = F.max_pool2d(torch.tanh(F.conv2d(x, self.w1)), 2)
        x = F.max_pool2d(torch.tanh(F.conv2d(x, self.w2, stride=2)), 2).reshape(-1)
        y = self.net.step(x)
        return torch.stack([torch.tanh(y[0]), torch.sigmoid(y[1]), torch.sigmoid(y[2])]).numpy()


def car_racing_frame(steps: int = 40, seed: int = 0):
    """A real CarRacing frame, uint8 (96, 96, 3), after `steps` steps of driving, and the
    env's `PixelObservation` wrapper (the resize the agent step includes)."""
    env = envs.make("CarRacing-v3")
    env.reset(seed=seed)
    for _ in range(steps):
        env.step(np.array([0.0, 0.5, 0.0], dtype=np.float32))
    frame = np.array(env.unwrapped.state)
    wrapper = env
    while not isinstance(wrapper, PixelObservation):
        wrapper = wrapper.env
    env.close()
    return frame, wrapper


def copy_bandwidth(nbytes, repeats):
    """Bytes moved per second (read + write) by np.copyto of a float32 buffer of `nbytes`."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    calls = max(1, int(2e8 // nbytes))
    us = median_us(lambda: np.copyto(dst, src), calls, repeats)
    return 2 * nbytes / (us * 1e-6)


def bench_stack(name, sizes, normalize, steps, repeats, rng):
    net = HebbianNetwork(sizes, rule="ABCD_lr", normalize=normalize)
    # Small coefficients keep the unnormalised stack's weights from overflowing during the
    # thousands of timed steps (NaN arithmetic would time differently in each reference).
    coeffs = rng.uniform(-0.01, 0.01, net.num_params).astype(np.float32)
    net.set_params(coeffs)
    net.reset(0)
    x = rng.uniform(-1, 1, sizes[0]).astype(np.float32)
    numpy_net = numpy_hebbian(sizes, coeffs, normalize)
    torch_net, tx = TorchHebbian(sizes, coeffs, normalize), torch.from_numpy(x)
    kernel, numpy_us, torch_us = interleaved_us(
        [(lambda: net.step(x), steps), (lambda: numpy_net.step(x), max(50, steps // 10)),
         (lambda: torch_net.step(tx), max(50, steps // 10))], repeats)
    # Weights read + written, and the kernel's coefficient runs read (eta folded in: A-D).
    streamed = 4 * (2 + NUM_TERMS) * net.num_synapses
    dram = copy_bandwidth(256 << 20, repeats)
    cache = copy_bandwidth(streamed // 2 * 2, repeats)
    achieved = streamed / (kernel * 1e-6)
    return {
        "stack": name, "sizes": list(sizes), "rule": "ABCD_lr", "normalize": normalize,
        "num_params": net.num_params, "kernel_us": kernel, "numpy_us": numpy_us, "torch_us": torch_us,
        "speedup_vs_numpy": numpy_us / kernel, "speedup_vs_torch": torch_us / kernel,
        "bytes_per_step": streamed, "achieved_GBps": achieved / 1e9,
        "copy_GBps_dram": dram / 1e9, "copy_GBps_same_size": cache / 1e9,
        "fraction_of_dram_copy": achieved / dram, "fraction_of_same_size_copy": achieved / cache,
    }


def bench_agent(steps, repeats, rng):
    """The whole CarRacing agent step from a uint8 frame, and each of its parts (microseconds)."""
    frame, pixels = car_racing_frame()
    policy = Policy(AgentConfig(encoder="cnn"), pixels.observation_space, pixels.action_space, env_id="CarRacing-v3")
    flat = rng.uniform(-0.1, 0.1, policy.num_params).astype(np.float32)
    policy.set_params(flat)
    policy.reset(0)
    obs = pixels.observation(frame)
    features = policy.encoder.encode(obs).copy()
    outputs = policy.network.step(features).copy()
    plain = TorchCarRacingPolicy(flat)
    # The CNN's first tanh, on as many values as its pooled conv1 map (9,614 with 16 lanes): NumPy's float32
    # tanh (which picks its code by CPU) against the portable one the CNN uses. Both copy the
    # input first, so neither takes the tanh of its own last output.
    pre = (rng.standard_normal(TANH_VALUES) * 2).astype(np.float32)
    work = np.empty_like(pre)

    def numpy_tanh():
        work[:] = pre
        np.tanh(work, out=work)

    def portable_tanh():
        work[:] = pre
        tanh32_inplace(work)

    step, resize, cnn, plastic, head, theirs, tanh_numpy, tanh_portable = interleaved_us(
        [(lambda: policy.act(pixels.observation(frame)), steps // 4),
         (lambda: pixels.observation(frame), steps // 4),
         (lambda: policy.encoder.encode(obs), steps // 4),
         (lambda: policy.network.step(features), steps // 4),
         (lambda: policy.head(outputs), steps // 4),
         (lambda: plain.act(frame), steps // 20),
         (numpy_tanh, steps // 4),
         (portable_tanh, steps // 4)], repeats)
    return {"agent_step_us": step, "resize_us": resize, "cnn_us": cnn, "plastic_us": plastic, "head_us": head,
            "rest_us": step - resize - cnn - plastic - head, "target_us": 100.0,
            "torch_policy_step_us": theirs, "speedup_vs_torch": theirs / step,
            "cnn_tanh_numpy_us": tanh_numpy, "cnn_tanh_portable_us": tanh_portable}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    stacks = [bench_stack("car_racing", (648, 128, 64, 3), True, args.steps, args.repeats, rng),
              bench_stack("quadruped", (28, 128, 64, 8), False, args.steps * 5, args.repeats, rng)]
    agent = bench_agent(args.steps, args.repeats, rng)
    for s in stacks:
        print(f"{s['stack']:>10}: kernel {s['kernel_us']:8.1f} us | numpy {s['numpy_us']:8.1f} us "
              f"({s['speedup_vs_numpy']:.1f}x) | torch {s['torch_us']:8.1f} us ({s['speedup_vs_torch']:.1f}x) | "
              f"{s['achieved_GBps']:.1f} GB/s = {s['fraction_of_dram_copy']:.0%} of DRAM copy "
              f"({s['copy_GBps_dram']:.1f} GB/s), {s['fraction_of_same_size_copy']:.0%} of same-size copy "
              f"({s['copy_GBps_same_size']:.1f} GB/s)")
    print(f"CarRacing agent step from a uint8 frame: {agent['agent_step_us']:.1f} us (target <= {agent['target_us']:.0f}) = "
          f"resize {agent['resize_us']:.1f} + CNN {agent['cnn_us']:.1f} + plastic {agent['plastic_us']:.1f} + "
          f"head {agent['head_us']:.1f} + rest {agent['rest_us']:.1f} (glue, caches) | "
          f"plain PyTorch {agent['torch_policy_step_us']:.1f} us ({agent['speedup_vs_torch']:.1f}x)")
    print(f"tanh of {TANH_VALUES:,} float32 values (the CNN's pooled conv1 map): NumPy "
          f"{agent['cnn_tanh_numpy_us']:.1f} us, portable tanh32 {agent['cnn_tanh_portable_us']:.1f} us")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"stacks": stacks, "agent": agent}
    write_result(args.out, record)


if __name__ == "__main__":
    main()
