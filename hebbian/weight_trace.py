"""The Hebbian weights within one episode: per-step statistics (`record_weights`) and their figure.

    trace = record_weights(problem, run.params, seed)
    plot_weight_trace(trace, "weights.png")

The weights start random in every episode; what was evolved is the rule that reshapes
them. The episode is played by `hebbian.playing.play`, so it is the one watched and the one
the evaluation scores for that seed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import es
from es.plotting import write_atomically
from hebbian.agent import AgentProblem, episode_seeds
from hebbian.playing import play


def _snapshot_schedule(limit: int = 10**7) -> list[int]:
    """Steps 0, 1, 2, 5, 10, 20, 50, ...: dense early, where plastic weights change most."""
    steps, base = [0], 1
    while base <= limit:
        steps += [base, 2 * base, 5 * base]
        base *= 10
    return steps


@dataclass
class WeightTrace:
    """Per-step weight statistics of one episode.

    Attributes:
        layer_shapes: (n_in, n_out) per layer.
        norms: float64 (T+1, L) Frobenius norm of each layer's weights; row t = after t
            steps (row 0 = the random initial weights).
        mean_abs_change: float64 (T, L) mean over the layer's synapses of |W_t - W_{t-1}|,
            row t-1 = the change made by step t (weights are dimensionless).
        rewards: float64 (T,) reward of each step.
        layer: index of the layer whose snapshots are kept.
        snapshots: step -> float32 (n_in, n_out) copy of that layer's weights, at steps 0,
            1, 2, 5, 10, 20, 50, ... and at the last step.
        seed, ret, steps: the episode seed, its return and its length T.
    """

    layer_shapes: list[tuple[int, int]]
    norms: np.ndarray
    mean_abs_change: np.ndarray
    rewards: np.ndarray
    layer: int
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    seed: int = 0
    ret: float = 0.0
    steps: int = 0


def default_layer(shapes: Sequence[tuple[int, int]]) -> int:
    """The layer whose heat map reads best: the one closest to square (ties: the earlier).

    CarRacing 648x128, 128x64, 64x3 -> 128x64; CartPole 4x32, 32x2 -> 4x32.
    """
    return min(range(len(shapes)), key=lambda i: (abs(math.log(shapes[i][0] / shapes[i][1])), i))


def record_weights(problem: AgentProblem, params: np.ndarray, seed: int, *, layer: int | None = None,
                   max_steps: int | None = None) -> WeightTrace:
    """Play one episode (`hebbian.playing.play`) and record its weights after every step.

    Reading `network.weights` gives the weights after each step's update and leaves the
    network's state untouched (its contract), so the episode is, bit for bit, the one played
    without recording: the evaluation's episode for the same seed.
    """
    policy = problem.policy
    policy.set_params(np.asarray(params, np.float32))
    network = policy.network
    # run_episode resets the policy with this weight seed; doing it here first gives W_0.
    policy.reset(episode_seeds(seed)[1])
    start = [np.array(w, np.float32) for w in network.weights]
    shapes = [tuple(int(d) for d in w.shape) for w in start]
    if layer is None:
        layer = default_layer(shapes)
    if not 0 <= layer < len(shapes):
        raise es.UsageError(f"layer must be from 0 to {len(shapes) - 1} (the network has {len(shapes)} layers), "
                            f"got {layer}")
    schedule = set(_snapshot_schedule())
    previous = [w.copy() for w in start]
    norms = [[float(np.linalg.norm(w)) for w in start]]
    changes: list[list[float]] = []
    rewards: list[float] = []
    snapshots = {0: start[layer].copy()}

    def on_step(episode, obs, action, reward):
        current = network.weights
        t = len(rewards) + 1
        changes.append([float(np.mean(np.abs(w - p))) for w, p in zip(current, previous)])
        norms.append([float(np.linalg.norm(w)) for w in current])
        for p, w in zip(previous, current):
            p[...] = w
        rewards.append(float(reward))
        if t in schedule:
            snapshots[t] = current[layer].copy()

    (result,) = play(problem, params, [seed], max_steps=max_steps, on_step=on_step)
    ret, steps = result.ret, result.steps
    snapshots[steps] = previous[layer].copy()
    return WeightTrace(shapes, np.array(norms, np.float64), np.array(changes, np.float64).reshape(steps, len(shapes)),
                       np.array(rewards, np.float64), layer, snapshots, int(seed), float(ret), int(steps))


def snapshot_panels(trace: WeightTrace) -> list[tuple[str, int]]:
    """(label, step) of the heat maps: start, early (~T/10), middle (~T/2), late (T), without repeats."""
    recorded = sorted(trace.snapshots)
    T = trace.steps

    def nearest(target: float) -> int:
        below = [s for s in recorded if s <= target]
        return below[-1] if below else recorded[0]

    panels, seen = [], set()
    for label, step in (("start", 0), ("early", nearest(max(1, T / 10))), ("middle", nearest(T / 2)), ("late", T)):
        if step not in seen:
            seen.add(step)
            panels.append((label, step))
    return panels


PLOT_FORMATS = ("png", "svg", "pdf")
PLOT_SIZE_IN = (12.0, 8.0)
PLOT_DPI = 100
"""Weight plots are PLOT_SIZE_IN x PLOT_DPI = 1200 x 800 pixels."""


def plot_weight_trace(trace: WeightTrace, path: str | Path, title: str = "") -> Path:
    """Write the weight-dynamics figure (PNG, or SVG/PDF by suffix) of `trace` to `path`.

    Top row: per layer, the weight norm over the episode; per layer, the mean |dW| per step
    (log scale: changes span orders of magnitude between the first steps and the rest);
    the running return. Bottom row: heat maps of layer `trace.layer` at start, early, middle
    and late steps, on one symmetric colour scale so the panels compare.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in PLOT_FORMATS:
        raise es.UsageError(f"weights plot {path} must end in {', '.join('.' + f for f in PLOT_FORMATS)}")
    fig = Figure(figsize=PLOT_SIZE_IN, dpi=PLOT_DPI)
    FigureCanvasAgg(fig)
    panels = snapshot_panels(trace)
    rows = fig.add_gridspec(2, 1, height_ratios=[1, 1.25], left=0.06, right=0.9, top=0.9, bottom=0.07, hspace=0.35)
    top = rows[0].subgridspec(1, 3, wspace=0.3)
    bottom = rows[1].subgridspec(1, len(panels), wspace=0.25)
    t_all = np.arange(trace.norms.shape[0])
    names = [f"layer {i} ({a}x{b})" for i, (a, b) in enumerate(trace.layer_shapes)]

    ax = fig.add_subplot(top[0])
    for i, name in enumerate(names):
        ax.plot(t_all, trace.norms[:, i], label=name, lw=1.2)
    ax.set(title="weight norm ||W||_F", xlabel="step")
    ax.legend(fontsize=7)

    ax = fig.add_subplot(top[1])
    if trace.steps:
        for i, name in enumerate(names):
            change = trace.mean_abs_change[:, i]
            ax.plot(np.arange(1, trace.steps + 1), np.where(change > 0, change, np.nan), label=name, lw=1.0)
        if np.any(trace.mean_abs_change > 0):
            ax.set_yscale("log")
    ax.set(title="mean |dW| per step", xlabel="step")

    ax = fig.add_subplot(top[2])
    ax.plot(np.arange(1, trace.steps + 1), np.cumsum(trace.rewards), color="black", lw=1.2)
    ax.set(title=f"running return (total {trace.ret:.1f})", xlabel="step")

    vmax = max(float(np.abs(trace.snapshots[s]).max()) for _, s in panels) or 1.0
    image = None
    for k, (label, step) in enumerate(panels):
        ax = fig.add_subplot(bottom[k])
        image = ax.imshow(trace.snapshots[step], cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto",
                          interpolation="nearest")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=f"{label}: step {step}", xlabel="post-synaptic unit")
        if k == 0:
            ax.set_ylabel(f"pre-synaptic unit ({names[trace.layer]})")
    cax = fig.add_axes((0.92, 0.07, 0.015, 0.38))
    fig.colorbar(image, cax=cax, label="weight")
    fig.suptitle(title or f"weights within one episode (seed {trace.seed}, {trace.steps} steps)")
    # atomic; a failed write (disk full) leaves no temporary file and raises OutputError (one line)
    return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=PLOT_DPI, format=fmt), "weights plot")
