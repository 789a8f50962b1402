"""Time and saved-for-backward memory of every attention mechanism, side by side.

One forward + backward of a single attention layer (batch 1, width 64, 4 heads) for
sequence lengths 256 ... 4096, single-threaded; then the activation memory of a reversible
stack against an ordinary one as depth grows. Writes benchmarks/results/attention.json and
prints a table; asserts nothing about timings.

    python benchmarks/attention.py                 # the full run (a few minutes)
    python benchmarks/attention.py --lengths 256 512 --repeats 1   # quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmarks.record import write_result

from hebbian.encoders.attention import make_attention
from hebbian.encoders.attention.reversible import ReversibleTransformer

DIM, HEADS = 64, 4
MECHANISMS = {
    "softmax": {},
    "lsh": {"n_hashes": 4, "bucket_size": 64},
    "linformer": {"seq_len": 4096, "k": 256},
    "linear": {},
    "favor": {"num_features": 64},
}


def saved_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of non-parameter tensors saved for backward by one forward of `module`."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and ptr not in seen:  # count a storage once, however many views
            seen.add(ptr)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(x.requires_grad_())
    del y
    return total


def forward_backward_seconds(module: torch.nn.Module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward of `module` on `x`."""
    xg = x.detach().requires_grad_()
    module.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    module(xg).sum().backward()
    return time.perf_counter() - t0


def bench_mechanisms(lengths, repeats):
    """Every (mechanism, length) cell is timed once per pass, and the passes sweep the whole
    grid `repeats` times, so that a burst of load from other processes on a shared CPU
    spoils one pass of many cells rather than every repeat of a few. Each cell reports its
    fastest time (the least disturbed estimate) and its median."""
    cells = {}
    for n in lengths:
        x = torch.randn(1, n, DIM)
        for name, opts in MECHANISMS.items():
            torch.manual_seed(0)
            module = make_attention(name, DIM, HEADS, **opts)
            forward_backward_seconds(module, x)  # warm-up
            cells[(name, n)] = (module, x, [])
    for i in range(repeats):
        for (name, n), (module, x, times) in cells.items():
            times.append(forward_backward_seconds(module, x))
        print(f"  pass {i + 1}/{repeats} done", flush=True)
    rows = []
    for (name, n), (module, x, times) in cells.items():
        mem = saved_bytes(module, x.clone())
        best, median = min(times), statistics.median(times)
        rows.append({"mechanism": name, "n": n, "seconds": best, "median_seconds": median, "saved_bytes": mem})
        print(f"  {name:10s} n={n:5d}  {best * 1e3:9.2f} ms (median {median * 1e3:9.2f})  "
              f"{mem / 2**20:9.2f} MiB saved", flush=True)
    return rows


def bench_reversible(n, depths):
    rows = []
    x = torch.randn(1, n, DIM)
    for depth in depths:
        for reversible in (True, False):
            torch.manual_seed(0)
            net = ReversibleTransformer(DIM, depth, lambda: make_attention("lsh", DIM, HEADS, **MECHANISMS["lsh"]),
                                        reversible=reversible)
            mem = saved_bytes(net, x.clone())
            rows.append({"depth": depth, "reversible": reversible, "n": n, "saved_bytes": mem})
            print(f"  lsh stack depth={depth} reversible={reversible!s:5s} {mem / 2**20:9.2f} MiB saved", flush=True)
    return rows


def summarise(rows, lengths):
    """Growth per doubling of n and the first length where each mechanism beats exact attention."""
    t = {(r["mechanism"], r["n"]): r["seconds"] for r in rows}
    m = {(r["mechanism"], r["n"]): r["saved_bytes"] for r in rows}
    out = {}
    for name in MECHANISMS:
        pairs = [(a, b) for a, b in zip(lengths, lengths[1:]) if b == 2 * a]
        # The crossover: the shortest length from which it stays faster at every longer one.
        faster = [n for i, n in enumerate(lengths)
                  if all(t[(name, m)] < t[("softmax", m)] for m in lengths[i:])]
        out[name] = {
            "time_growth_per_doubling": [t[(name, b)] / t[(name, a)] for a, b in pairs],
            "memory_growth_per_doubling": [m[(name, b)] / m[(name, a)] for a, b in pairs],
            "faster_than_softmax_from_n": None if name == "softmax" or not faster else faster[0],
            "speedup_at_longest": t[("softmax", lengths[-1])] / t[(name, lengths[-1])],
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=9, help="passes over the whole grid")
    parser.add_argument("--reversible-n", type=int, default=1024)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "attention.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # workers act single-threaded; compare mechanisms the same way

    print(f"forward + backward, batch 1, dim {DIM}, heads {HEADS}, 1 thread")
    load_before = os.getloadavg()
    rows = bench_mechanisms(args.lengths, args.repeats)
    print(f"saved activations of a reversible vs ordinary LSH stack, n={args.reversible_n}")
    rev = bench_reversible(args.reversible_n, args.depths)
    summary = summarise(rows, args.lengths)
    for name, s in summary.items():
        growth = ", ".join(f"{g:.2f}" for g in s["time_growth_per_doubling"])
        print(f"  {name:10s} time x per doubling: {growth};  faster than softmax from n = "
              f"{s['faster_than_softmax_from_n']};  speed-up at n={args.lengths[-1]}: {s['speedup_at_longest']:.2f}")
    write_result(args.out, {
        "config": {"dim": DIM, "heads": HEADS, "batch": 1, "threads": 1, "mechanisms": MECHANISMS,
                   "lengths": args.lengths, "repeats": args.repeats,
                   "seconds": "fastest of the repeats", "saved_bytes": "non-parameter storages saved for backward"},
        "machine": {"torch": torch.__version__, "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    # Load average (1 min) before and after: other jobs shared this CPU.
                    "load_average": [load_before[0], os.getloadavg()[0]]},
        "forward_backward": rows,
        "reversible": rev,
        "summary": summary,
    })


if __name__ == "__main__":
    main()
