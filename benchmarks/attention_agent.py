"""Microseconds per step of the self-attention agent (Tang et al. 2020): ours beside torch.

Run from the repository root:  python -m benchmarks.attention_agent [--repeats 15] [--steps 300]
Writes benchmarks/results/attention_agent.json. One thread; the implementations are timed
in turn within every repeat (`benchmarks.kernels.interleaved_us`), medians over repeats.

- encoder (3x96x96 frame -> 20 features): `PatchAttentionEncoder.encode` against the
  authors' forward pass written with torch modules under no_grad (unfold/permute, two
  nn.Linear, bmm, softmax, argsort: AttentionAgent/solutions/torch_solutions.py), the
  previous torch encoder of this project (F.unfold, stable sort), and the same computation
  in plain NumPy (full 529 x 529 matrix, exact row max). Ours is timed with the default
  initial parameters and with large ones (N(0, 3^2)), where most softmax rows take the
  kernel's slow path (the cheap upper-bound shift is too loose there).
- controller (20 -> LSTM 16 -> 3, tanh): `LSTMNetwork.step` against nn.LSTM + nn.Linear +
  tanh per step under no_grad (the authors' `LSTMStack`) and the same step in NumPy.
- the whole agent step, encoder then controller, ours against the authors' torch modules.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.kernels import interleaved_us  # noqa: E402
from benchmarks.record import write_result  # noqa: E402
from hebbian.encoders.patch_attention import PatchAttentionEncoder  # noqa: E402
from hebbian.lstm import LSTMNetwork  # noqa: E402
from tests.authors_torch import load_authors_layout  # noqa: E402

torch.set_num_threads(1)
RESULTS = Path(__file__).parent / "results" / "attention_agent.json"


class TorchAttention:
    """The authors' VisionTaskSolution forward up to the 20 features, per step under no_grad."""

    def __init__(self, flat):
        self.fc_q, self.fc_k = torch.nn.Linear(147, 4), torch.nn.Linear(147, 4)
        load_authors_layout([self.fc_q, self.fc_k], flat)
        self.centres = torch.tensor([[3 + 4 * i, 3 + 4 * j] for i in range(23) for j in range(23)]).float()

    def features(self, frame_chw):
        with torch.no_grad():
            ob = torch.from_numpy(frame_chw).permute(1, 2, 0)  # the authors' (h, w, c)
            c = ob.shape[2]
            patches = ob.unfold(0, 7, 4).permute(0, 3, 1, 2)
            patches = patches.unfold(2, 7, 4).permute(0, 2, 1, 4, 3)
            patches = patches.reshape((-1, 7, 7, c)).reshape((1, -1, c * 49))
            q, k = self.fc_q(patches), self.fc_k(patches)
            dot = torch.div(torch.bmm(q, k.transpose(1, 2)), torch.sqrt(torch.tensor(147).float()))
            importance = torch.softmax(dot.squeeze(), dim=-1).sum(dim=0)
            top = torch.argsort(importance, descending=True)[:10]
            return self.centres[top].flatten(0, -1) / 96


class TorchPrevious:
    """This project's previous encoder path: F.unfold, two linear maps, softmax, stable sort
    (F.unfold flattens patches channel-major, so the weights are permuted to match)."""

    def __init__(self, flat):
        def channel_major(w):
            return torch.from_numpy(np.ascontiguousarray(w.reshape(4, 7, 7, 3).transpose(0, 3, 1, 2).reshape(4, 147)))

        self.wq, self.bq = channel_major(flat[4:592]), torch.from_numpy(flat[:4])
        self.wk, self.bk = channel_major(flat[596:]), torch.from_numpy(flat[592:596])
        self.centres = torch.tensor([[3 + 4 * i, 3 + 4 * j] for i in range(23) for j in range(23)]).float() / 96

    def features(self, frame_chw):
        with torch.inference_mode():
            x = F.unfold(torch.from_numpy(frame_chw)[None], kernel_size=7, stride=4)[0].T
            q, k = F.linear(x, self.wq, self.bq), F.linear(x, self.wk, self.bk)
            importance = torch.softmax(q @ k.T / math.sqrt(147), dim=-1).sum(dim=0)
            top = torch.sort(importance, descending=True, stable=True).indices[:10]
            return self.centres[top].reshape(-1).numpy()


class NumpyAttention:
    """The same in NumPy with preallocated buffers: patch copy, one matmul, the full 529 x 529
    softmax with the exact row max, column sums by a matrix-vector product, stable argsort."""

    def __init__(self, flat):
        self.flat = flat
        self.hwc = np.empty((96, 96, 3), np.float32)
        self.x = np.empty((23, 23, 7, 7, 3), np.float32)
        self.w = np.empty((147, 8), np.float32)
        self.qk = np.empty((529, 8), np.float32)
        self.s = np.empty((529, 529), np.float32)
        self.m, self.z, self.imp = (np.empty(529, np.float32) for _ in range(3))
        self.ones = np.ones(529, np.float32)
        self.centres = np.array([[3 + 4 * i, 3 + 4 * j] for i in range(23) for j in range(23)], np.float32) / 96

    def features(self, frame_chw):
        f = self.flat
        np.copyto(self.hwc, frame_chw.transpose(1, 2, 0))
        sh, sw, _ = self.hwc.strides
        np.copyto(self.x.reshape(23, 23, 7, 21),
                  np.lib.stride_tricks.as_strided(self.hwc, (23, 23, 7, 21), (4 * sh, 4 * sw, sh, 4)))
        np.multiply(f[4:592].reshape(4, 147).T, np.float32(1 / math.sqrt(147)), out=self.w[:, :4])
        self.w[:, 4:] = f[596:].reshape(4, 147).T
        np.matmul(self.x.reshape(529, 147), self.w, out=self.qk)
        self.qk[:, :4] += f[:4] / np.float32(math.sqrt(147))
        self.qk[:, 4:] += f[592:596]
        np.matmul(self.qk[:, :4], self.qk[:, 4:].T, out=self.s)
        np.max(self.s, axis=1, out=self.m)
        np.subtract(self.s, self.m[:, None], out=self.s)
        np.exp(self.s, out=self.s)
        np.dot(self.s, self.ones, out=self.z)
        np.divide(1.0, self.z, out=self.z)
        np.dot(self.z, self.s, out=self.imp)
        return self.centres[np.argsort(-self.imp, kind="stable")[:10]].reshape(-1)


class TorchLSTM:
    """The authors' LSTMStack + tanh: nn.LSTM(20, 16) and nn.Linear(16, 3) per step under no_grad."""

    def __init__(self, flat, sizes=(20, 16, 3)):
        n_in, n_h, n_out = sizes
        self.lstm, self.fc = torch.nn.LSTM(input_size=n_in, hidden_size=n_h, num_layers=1), torch.nn.Linear(n_h, n_out)
        load_authors_layout([self.lstm, self.fc], flat)
        self.n_h = n_h
        self.reset()

    def reset(self):
        self.hidden = (torch.zeros((1, 1, self.n_h)), torch.zeros((1, 1, self.n_h)))

    def step(self, x):
        with torch.no_grad():
            if not isinstance(x, torch.Tensor):
                x = torch.from_numpy(x).float()
            out, self.hidden = self.lstm(x.view(1, 1, -1), self.hidden)
            return torch.tanh(self.fc(torch.flatten(out, start_dim=0, end_dim=-1))).squeeze().numpy()


class NumpyLSTM:
    """The same step in NumPy: two matrix-vector products into preallocated buffers, ufuncs with out=."""

    def __init__(self, net: LSTMNetwork):
        self.b = (net.param("bias_ih_l0") + net.param("bias_hh_l0")).astype(np.float32)
        self.w_ih, self.w_hh = net.param("weight_ih_l0"), net.param("weight_hh_l0")
        self.w, self.bo = net.param("weight"), net.param("bias")
        n_h = net.sizes[1]
        self.h, self.c = np.zeros(n_h, np.float32), np.zeros(n_h, np.float32)
        self.g, self.g2 = np.zeros(4 * n_h, np.float32), np.zeros(4 * n_h, np.float32)
        self.out = np.zeros(net.sizes[2], np.float32)
        self.n_h = n_h

    def step(self, x):
        n = self.n_h
        g = self.g
        np.dot(self.w_ih, x, out=g)
        np.dot(self.w_hh, self.h, out=self.g2)
        g += self.g2
        g += self.b
        sig = g[:2 * n]  # i, f
        np.negative(sig, out=sig)
        np.exp(sig, out=sig)
        sig += 1.0
        np.reciprocal(sig, out=sig)
        o = g[3 * n:]
        np.negative(o, out=o)
        np.exp(o, out=o)
        o += 1.0
        np.reciprocal(o, out=o)
        np.tanh(g[2 * n:3 * n], out=g[2 * n:3 * n])
        self.c *= g[n:2 * n]
        np.multiply(g[:n], g[2 * n:3 * n], out=self.g2[:n])
        self.c += self.g2[:n]
        np.tanh(self.c, out=self.h)
        self.h *= o
        np.dot(self.w, self.h, out=self.out)
        self.out += self.bo
        return np.tanh(self.out, out=self.out)


def bench_encoder(steps, repeats, rng):
    frame = rng.random((3, 96, 96), dtype=np.float32)
    enc = PatchAttentionEncoder()
    flat = enc.initial_params(1)
    large = (rng.standard_normal(enc.num_params) * 3).astype(np.float32)
    enc.set_params(flat)
    enc_large = PatchAttentionEncoder()
    enc_large.set_params(large)
    authors, previous, plain = TorchAttention(flat), TorchPrevious(flat), NumpyAttention(flat)
    for other in (authors.features(frame).numpy(), previous.features(frame), plain.features(frame)):
        assert np.allclose(enc.encode(frame), other, atol=1e-6)  # same top 10 (no ties in random frames)
    ours, ours_large, t_authors, t_previous, t_numpy = interleaved_us(
        [(lambda: enc.encode(frame), steps), (lambda: enc_large.encode(frame), steps),
         (lambda: authors.features(frame), steps // 2), (lambda: previous.features(frame), steps // 2),
         (lambda: plain.features(frame), steps)], repeats)
    return {"ours_us": ours, "ours_large_params_us": ours_large, "torch_authors_us": t_authors,
            "torch_previous_us": t_previous, "numpy_us": t_numpy,
            "speedup_vs_torch_authors": t_authors / ours, "speedup_vs_torch_previous": t_previous / ours,
            "speedup_vs_numpy": t_numpy / ours}


def bench_lstm(steps, repeats, rng):
    net = LSTMNetwork((20, 16, 3))
    flat = net.initial_params(2)
    net.set_params(flat)
    net.reset()
    ref, plain = TorchLSTM(flat), NumpyLSTM(net)
    x = rng.random(20, dtype=np.float32)
    for _ in range(5):
        y = net.step(x).copy()
        assert np.allclose(y, ref.step(x), atol=1e-5) and np.allclose(y, plain.step(x), atol=1e-5)
    ours, t_torch, t_numpy = interleaved_us(
        [(lambda: net.step(x), steps * 20), (lambda: ref.step(x), steps * 5), (lambda: plain.step(x), steps * 10)],
        repeats)
    return {"sizes": [20, 16, 3], "num_params": net.num_params, "ours_us": ours, "torch_us": t_torch,
            "numpy_us": t_numpy, "speedup_vs_torch": t_torch / ours, "speedup_vs_numpy": t_numpy / ours}


def bench_agent(steps, repeats, rng):
    frame = rng.random((3, 96, 96), dtype=np.float32)
    enc, net = PatchAttentionEncoder(), LSTMNetwork((20, 16, 3))
    enc_flat, net_flat = enc.initial_params(3), net.initial_params(4)
    enc.set_params(enc_flat)
    net.set_params(net_flat)
    net.reset()
    attention, controller = TorchAttention(enc_flat), TorchLSTM(net_flat)
    ours, theirs = interleaved_us(
        [(lambda: net.step(enc.encode(frame)), steps), (lambda: controller.step(attention.features(frame)), steps // 2)],
        repeats)
    return {"ours_us": ours, "torch_authors_us": theirs, "speedup_vs_torch_authors": theirs / ours}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    encoder = bench_encoder(args.steps, args.repeats, rng)
    lstm = bench_lstm(args.steps, args.repeats, rng)
    agent = bench_agent(args.steps, args.repeats, rng)
    print(f"encoder: ours {encoder['ours_us']:.0f} us (large params {encoder['ours_large_params_us']:.0f} us) | "
          f"torch, authors' code {encoder['torch_authors_us']:.0f} us ({encoder['speedup_vs_torch_authors']:.1f}x) | "
          f"torch, previous encoder {encoder['torch_previous_us']:.0f} us ({encoder['speedup_vs_torch_previous']:.1f}x) | "
          f"numpy {encoder['numpy_us']:.0f} us ({encoder['speedup_vs_numpy']:.1f}x)")
    print(f"LSTM 20-16-3: ours {lstm['ours_us']:.2f} us | torch {lstm['torch_us']:.1f} us "
          f"({lstm['speedup_vs_torch']:.0f}x) | numpy {lstm['numpy_us']:.1f} us ({lstm['speedup_vs_numpy']:.1f}x)")
    print(f"agent step: ours {agent['ours_us']:.0f} us | torch, authors' code {agent['torch_authors_us']:.0f} us "
          f"({agent['speedup_vs_torch_authors']:.1f}x)")
    record = {"settings": {"steps": args.steps, "repeats": args.repeats},
              "encoder": encoder, "lstm": lstm, "agent": agent}
    write_result(args.out, record)


if __name__ == "__main__":
    main()
