"""Watching evolved agents: episodes in a window, an mp4 and a GIF at once.

    run = hebbian.evaluate.load_run("runs/CarRacing-v3/20261128T101500Z-0", "best")
    problem = hebbian.evaluate.make_problem(run)
    watch(problem, run.params, hebbian.evaluate.run_test_seeds(run, 3), video="drive.mp4", gif="drive.gif")

The pieces, one concern each: `hebbian.playing` plays the episodes (as the evaluation
does: watched episode k is evaluation episode k), `hebbian.frames` renders them with the
overlay and sends the frames to a window and files, `hebbian.weight_trace` records the
weights within an episode and plots them. This module joins the first two.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import es
from es.plotting import check_output
from hebbian import frames
from hebbian.agent import AgentProblem
from hebbian.playing import EpisodeResult, play


def watch(problem: AgentProblem, params: np.ndarray, seeds: Sequence[int], *, window: bool = False,
          video: str | Path | None = None, gif: str | Path | None = None, fps: float | None = None,
          scale: float = 1.0, max_steps: int | None = None, title: str = "hebbian watch",
          on_start: Callable[[str], None] | None = None,
          on_episode: Callable[[int, EpisodeResult], None] | None = None,
          on_saved: Callable[[Path, int], None] | None = None) -> list[EpisodeResult]:
    """Play `seeds` into any of a window, an mp4 and a GIF at once (the same frames in each).

    One frame per env step, showing the state after it, with "episode i/n", "step t" and
    "return R" drawn on it. fps: frames per second of the window and the files (None = the
    env's own rate); scale: frame resize factor; on_start(message) is told where the frames
    go before the first episode; on_saved(path, frames) is told each file once it is
    complete (also after Ctrl-C or a closed window; a file that got no frame is not
    written). Returns the finished episodes: all of them, or those before the window closed.

    Raises es.UsageError before playing when a window is asked for and there is no
    display, or when `video` / `gif` cannot be written (`es.plotting.check_output`);
    OutputError (one line) when writing fails while playing (nothing half-written stays).
    """
    for flag, path in (("video", video), ("GIF", gif)):
        if path:
            check_output(path, flag)
    if fps is not None:
        frames.check_fps(fps)
    if not (math.isfinite(scale) and scale > 0):
        raise es.UsageError(f"scale must be a positive number, got {scale}")
    env = frames.EpisodeOverlay(frames.render_env(problem), episodes=len(seeds))
    sinks: list = []
    try:
        fps = fps or frames.default_fps(env)
        if window:
            sinks.append(frames.Window(fps, title=title))
        if video:
            sinks.append(frames.VideoWriter(video, fps))
        if gif:
            sinks.append(frames.GifWriter(gif, fps))
        if on_start is not None:
            where = ([f"a window ({sinks[0].driver})"] if window else []) + [str(p) for p in (video, gif) if p]
            on_start(f"playing {len(seeds)} episode(s) at {fps:g} fps into {', '.join(where)}"
                     + ("; close the window or press Esc to stop" if window else ""))
        files = [s for s in sinks if isinstance(s, (frames.VideoWriter, frames.GifWriter))]
        results: list[EpisodeResult] = []

        def finished(i: int, result: EpisodeResult) -> None:
            results.append(result)
            if on_episode is not None:
                on_episode(i, result)

        try:
            with frames.FrameSinks(sinks, scale) as sink:
                sinks = []  # FrameSinks closes them from here on
                try:
                    play(problem, params, seeds, env=env, max_steps=max_steps,
                         on_step=lambda *_: sink(env.render()), on_episode=finished)
                except frames.WindowClosed:
                    pass  # the user stopped: the files keep what was recorded
        finally:
            if on_saved is not None:
                for s in files:
                    if s.written:
                        on_saved(s.path, s.frames)
        return results
    finally:
        for sink in sinks:  # not handed to FrameSinks: an error came first
            try:
                getattr(sink, "discard", sink.close)()
            except Exception:
                pass
        env.close()
