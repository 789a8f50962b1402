"""Watching evolved agents: episodes in a window or a video, and the weights changing within one.

    run = hebbian.evaluate.load_run("runs/CarRacing-v3/20261128T101500Z-0", "best")
    problem = hebbian.evaluate.make_problem(run)
    with FrameSinks([VideoWriter("drive.mp4", fps=50)]) as sink:
        results = play(problem, run.params, hebbian.evaluate.run_test_seeds(run, 3), sink)
    trace = record_weights(problem, run.params, seed)
    plot_weight_trace(trace, "weights.png")

Episodes are played with the same env options, seeds and code path (`run_episode`) as the
standard evaluation, so a watched episode's return is the one eval.json reports for it.
Frames come from a second copy of the env built with render_mode="rgb_array": the agent
still sees its usual observations, and the window, the video and the GIF show the same
frames with the same overlay (episode, step, running return) drawn on them. The window is
a plain pygame window fed with those frames rather than the env's own "human" mode, which
not every env has and which could not carry the overlay.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import envs
import es
from es.checkpoint import remove_quietly, temp_path
from es.plotting import OutputError, check_output, write_atomically
from hebbian.agent import AgentProblem, episode_seeds, run_episode

FrameSink = Callable[[np.ndarray], None]
"""Receives each frame: uint8 (H, W, 3)."""


# -- frames and overlay ----------------------------------------------------------------------
def _font(height: int):
    """A PIL font about `height` px tall: Pillow's bundled scalable font, or its bitmap one."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(8, height))
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def draw_overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """`frame` uint8 (H, W, 3) with `lines` of text on a dark box in the top-left corner.

    The text height scales with the frame (about 1/25 of its height, at least 10 px) so it
    stays readable on a 600x400 CarRacing frame and on a 320x240 pybullet one.
    """
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8))
    draw = ImageDraw.Draw(image, "RGBA")
    size = max(10, image.height // 25)
    font = _font(size)
    pad, y = max(2, size // 4), max(2, size // 4)
    boxes = [draw.textbbox((0, 0), text, font=font) for text in lines]
    width = max(b[2] for b in boxes) + 2 * pad
    height = sum(b[3] for b in boxes) + pad * (len(lines) + 1)
    draw.rectangle((0, 0, width, height), fill=(0, 0, 0, 150))
    for text, box in zip(lines, boxes):
        draw.text((pad, y), text, fill=(255, 255, 255, 255), font=font)
        y += box[3] + pad
    return np.asarray(image)


def resize_frame(frame: np.ndarray, scale: float) -> np.ndarray:
    """`frame` scaled by `scale` (area-averaged when shrinking); unchanged for scale 1."""
    if scale == 1:
        return frame
    from PIL import Image

    image = Image.fromarray(frame)
    size = (max(2, round(image.width * scale)), max(2, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.NEAREST))


# -- where frames go -----------------------------------------------------------------------
def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise es.UsageError(f"fps must be a number above 0 and at most {MAX_FPS}, got {fps}")
    return fps


MAX_FPS = 1000.0


class VideoWriter:
    """Frames -> an H.264 mp4 (imageio-ffmpeg's bundled ffmpeg; no system ffmpeg needed).

    Odd frame sizes are padded by one black row / column, since yuv420p needs even sizes.
    ffmpeg runs as a child process fed raw RGB frames (the command imageio builds for
    quality 7, with the frame size kept), so that its exit status is checked: a video
    ffmpeg could not finish (disk full while writing the trailer) is an error, not a
    silently broken file. Frames go to a hidden temporary file next to `path`, moved into
    place by `close` (`path` is never half a video); `discard` or a failed write removes
    it. Failures raise OutputError (one line). `written` tells whether `close` produced
    the file (it does not when no frame came).
    """

    CRF = 15  # imageio's quality=7 for libx264: int((1 - 7 / 10) * 51)
    CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov", ".avi": "avi"}

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = _check_fps(fps)
        self._container = self.CONTAINERS.get(self.path.suffix.lower())
        if self._container is None:
            raise es.UsageError(f"a video file must end in {', '.join(self.CONTAINERS)}, got {self.path}")
        self._tmp = temp_path(self.path)
        self._process = None
        self._log = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self.written = False

    def _failed(self, error: BaseException | str) -> OutputError:
        if isinstance(error, BaseException):
            text = (error.strerror if isinstance(error, OSError) and error.strerror else str(error)).strip()
            text = text.splitlines()[0] if text else type(error).__name__
        else:
            text = error
        return OutputError(f"cannot write video {self.path}: {text}; free some space or choose another place")

    def _ffmpeg_said(self) -> str:
        """The last line ffmpeg wrote to its log, e.g. "Error writing trailer: No space left on device"."""
        try:
            self._log.seek(0)
            lines = [ln.strip() for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
        except (OSError, ValueError):
            lines = []
        return lines[-1].split("] ", 1)[-1] if lines else f"ffmpeg exited with status {self._process.returncode}"

    def _start(self, width: int, height: int) -> None:
        import subprocess
        import tempfile
        from fractions import Fraction

        import imageio_ffmpeg

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log = tempfile.TemporaryFile()
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}",
               "-pix_fmt", "rgb24", "-r", str(Fraction(self.fps).limit_denominator()), "-i", "-", "-an",
               "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", str(self.CRF), "-v", "error", "-f", self._container, str(self._tmp)]
        # its own session: Ctrl-C stops us, not ffmpeg, which then finishes the frames so far
        self._process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                         start_new_session=True)
        self._size = (width, height)

    def __call__(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
            h, w = frame.shape[:2]
        try:
            if self._process is None:
                self._start(w, h)
            elif self._size != (w, h):
                raise ValueError(f"frame size changed from {self._size[0]}x{self._size[1]} to {w}x{h}")
            self._process.stdin.write(np.ascontiguousarray(frame[..., :3], dtype=np.uint8).tobytes())
        except Exception as e:  # ffmpeg died (disk full), the pipe broke, ffmpeg missing
            said = self._ffmpeg_said() if isinstance(e, BrokenPipeError) and self._process is not None else None
            self.discard()
            raise self._failed(said or e) from None
        self.frames += 1

    def close(self) -> None:
        """Let ffmpeg finish and move the video into place; OutputError if ffmpeg failed."""
        process = self._process
        if process is None:  # no frame came (or already closed): nothing to write
            return
        try:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            process.wait()
            if process.returncode != 0:
                raise self._failed(self._ffmpeg_said())
            os.replace(self._tmp, self.path)
            self.written = True
        except OSError as e:
            raise self._failed(e) from None
        finally:
            self._process = None
            self._cleanup()

    def discard(self) -> None:
        """Stop ffmpeg and remove the temporary file; `path` is left as it was."""
        process, self._process = self._process, None
        if process is not None:
            try:
                process.kill()
                process.wait()
            except OSError:
                pass
        self._cleanup()

    def _cleanup(self) -> None:
        remove_quietly(self._tmp)
        if self._log is not None:
            self._log.close()
            self._log = None


class GifWriter:
    """Frames -> an animated GIF (Pillow through imageio), looping forever.

    GIF frames are kept in memory until `close` (that is how GIF encoders work); use
    `--scale` for long episodes. `close` writes atomically (temporary file, then moved
    into place; OutputError, one line, if that fails); `discard` drops the frames.
    """

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = _check_fps(fps)
        self._frames: list[np.ndarray] = []
        self.frames = 0  # frames received (the buffer empties on close)
        self.written = False

    def __call__(self, frame: np.ndarray) -> None:
        self._frames.append(np.array(frame, copy=True))
        self.frames += 1

    def close(self) -> None:
        import imageio.v3 as iio

        frames, self._frames = self._frames, []
        if frames:
            # GIF delays are whole centiseconds: 50 fps becomes 20 ms per frame. Encoded in
            # memory first, so the only thing that can fail on disk is writing the bytes.
            data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", plugin="pillow",
                               duration=round(1000 / self.fps), loop=0)
            write_atomically(self.path, lambda tmp: tmp.write_bytes(data), "GIF")
            self.written = True

    def discard(self) -> None:
        self._frames = []


class WindowClosed(Exception):
    """The user closed the window (or pressed Esc / q): stop playing."""


def display_available() -> bool:
    """True where a window can open: an X11 / Wayland display on Linux, always elsewhere."""
    if os.name != "posix" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


_DUMMY_SET = {"value": None}  # the SDL driver render_env chose, so a later Window can undo it


class Window:
    """A pygame window that shows frames at `fps` (pygame-ce comes with gymnasium[box2d]).

    Raises es.UsageError when there is no display, WindowClosed when the user closes it.
    """

    def __init__(self, fps: float, title: str = "hebbian watch"):
        if not display_available():
            raise es.UsageError("no display to open a window on ($DISPLAY is not set); write a video with "
                                "--video out.mp4 or --gif out.gif, or run under xvfb-run")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        if _DUMMY_SET["value"] and os.environ.get("SDL_VIDEODRIVER") == _DUMMY_SET["value"]:
            del os.environ["SDL_VIDEODRIVER"]  # a display appeared since: let SDL pick the real driver
        import pygame

        self._pygame = pygame
        try:
            pygame.display.init()
        except pygame.error as e:  # $DISPLAY set but nothing listening there
            raise es.UsageError(f"cannot open a window on display {os.environ.get('DISPLAY')!r} ({e}); "
                                "write a video with --video out.mp4 instead") from None
        self.driver = pygame.display.get_driver()
        self.title, self.fps = title, fps
        self._screen = None
        self._clock = pygame.time.Clock()
        self.frames = 0

    def __call__(self, frame: np.ndarray) -> None:
        pygame = self._pygame
        h, w = frame.shape[:2]
        if self._screen is None or self._screen.get_size() != (w, h):
            self._screen = pygame.display.set_mode((w, h))
            pygame.display.set_caption(self.title)
        for event in pygame.event.get():
            quit_key = event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
            if event.type == pygame.QUIT or quit_key:
                raise WindowClosed()
        # surfarray wants (W, H, 3); frames are (H, W, 3)
        pygame.surfarray.blit_array(self._screen, np.ascontiguousarray(frame.transpose(1, 0, 2)))
        pygame.display.flip()
        self._clock.tick(self.fps)
        self.frames += 1

    def close(self) -> None:
        self._pygame.display.quit()


class FrameSinks:
    """Several sinks fed the same frames (e.g. a window and a video); closes them all.

    Leaving the `with` block normally (or by Ctrl-C) closes every sink: files are committed
    with what was recorded, even when one of them fails (the first failure is raised after
    all are closed). Leaving it by an error discards the files instead (sinks with a
    `discard` method: no half video is left to pass for a whole one) and closes the rest;
    the error is the one raised.
    """

    def __init__(self, sinks: Sequence, scale: float = 1.0):
        self.sinks = list(sinks)
        self.scale = float(scale)

    def __call__(self, frame: np.ndarray) -> None:
        frame = resize_frame(frame, self.scale)
        for sink in self.sinks:
            sink(frame)

    def close(self) -> None:
        first = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:
                first = first or e
        if first is not None:
            raise first

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
            return
        for sink in self.sinks:  # an error is on its way: it is the one to report; no half file stays
            try:
                getattr(sink, "discard", sink.close)()
            except Exception:
                pass


# -- playing -----------------------------------------------------------------------------
@dataclass
class EpisodeResult:
    """One watched episode: its seed (the episode seed of `run_episode`), return and steps."""

    seed: int
    ret: float
    steps: int


def render_env(problem: AgentProblem):
    """A copy of `problem`'s (first) env that renders rgb_array frames."""
    # pygame-based envs (CartPole, CarRacing) init SDL's display even for rgb_array;
    # without a display SDL probes Wayland and prints an XDG_RUNTIME_DIR error. The
    # dummy driver draws the same off-screen frames quietly.
    if not display_available() and "SDL_VIDEODRIVER" not in os.environ:
        os.environ["SDL_VIDEODRIVER"] = _DUMMY_SET["value"] = "dummy"
    options = {**problem.env_options, "render_mode": "rgb_array"}
    if problem.morphologies:
        options["morphology"] = problem.morphologies[0]
    with warnings.catch_warnings():  # the problem's own env has already said which version runs
        warnings.simplefilter("ignore", envs.EnvironmentAliasWarning)
        return envs.make(problem.env_id, **options)


def default_fps(env) -> float:
    """The env's own frame rate (metadata["render_fps"]), 30 if it does not say."""
    fps = (getattr(env, "metadata", None) or {}).get("render_fps")
    return float(fps) if fps else 30.0


def play(problem: AgentProblem, params: np.ndarray, seeds: Sequence[int], sink: FrameSink | None = None, *,
         max_steps: int | None = None, env=None, on_episode: Callable[[int, EpisodeResult], None] | None = None
         ) -> list[EpisodeResult]:
    """Play one episode per seed with `params`; each frame (after each step) goes to `sink`.

    Frame count = total steps: one frame per env step, showing the state after it, with
    "episode i/n", "step t" and "return R" (the running return) drawn on it.
    Stops early (returning the finished episodes) when a Window is closed.
    """
    policy = problem.policy
    policy.set_params(np.asarray(params, np.float32))
    own_env = env is None
    env = env if env is not None else (render_env(problem) if sink is not None else problem.envs[0])
    results: list[EpisodeResult] = []
    try:
        for i, seed in enumerate(seeds):
            state = {"t": 0, "ret": 0.0}

            def on_step(obs, action, reward, i=i, state=state):
                state["t"] += 1
                state["ret"] += float(reward)
                if sink is not None:
                    frame = np.asarray(env.render())
                    sink(draw_overlay(frame, [f"episode {i + 1}/{len(seeds)}", f"step {state['t']}",
                                              f"return {state['ret']:.1f}"]))

            ret, steps = run_episode(env, policy, seed, max_steps=max_steps, on_step=on_step)
            results.append(EpisodeResult(int(seed), float(ret), int(steps)))
            if on_episode is not None:
                on_episode(i, results[-1])
    except WindowClosed:
        pass
    finally:
        if own_env and sink is not None:
            env.close()
    return results


def watch(problem: AgentProblem, params: np.ndarray, seeds: Sequence[int], *, window: bool = False,
          video: str | Path | None = None, gif: str | Path | None = None, fps: float | None = None,
          scale: float = 1.0, max_steps: int | None = None, title: str = "hebbian watch",
          on_start: Callable[[str], None] | None = None,
          on_episode: Callable[[int, EpisodeResult], None] | None = None,
          on_saved: Callable[[Path, int], None] | None = None) -> list[EpisodeResult]:
    """Play `seeds` into any of a window, an mp4 and a GIF at once (the same frames in each).

    fps: frames per second of the window and the files (None = the env's own rate);
    scale: frame resize factor; on_start(message) is told where the frames go before the
    first episode; on_saved(path, frames) is told each file once it is complete (also
    after Ctrl-C or a closed window; a file that got no frame is not written).

    Raises es.UsageError before playing when a window is asked for and there is no
    display, or when `video` / `gif` cannot be written (`es.plotting.check_output`);
    OutputError (one line) when writing fails while playing (nothing half-written stays).
    """
    for flag, path in (("video", video), ("GIF", gif)):
        if path:
            check_output(path, flag)
    if fps is not None:
        _check_fps(fps)
    if not (math.isfinite(scale) and scale > 0):
        raise es.UsageError(f"scale must be a positive number, got {scale}")
    env = render_env(problem)
    sinks: list = []
    try:
        fps = fps or default_fps(env)
        if window:
            sinks.append(Window(fps, title=title))
        if video:
            sinks.append(VideoWriter(video, fps))
        if gif:
            sinks.append(GifWriter(gif, fps))
        if on_start is not None:
            where = ([f"a window ({sinks[0].driver})"] if window else []) + [str(p) for p in (video, gif) if p]
            on_start(f"playing {len(seeds)} episode(s) at {fps:g} fps into {', '.join(where)}"
                     + ("; close the window or press Esc to stop" if window else ""))
        files = [s for s in sinks if isinstance(s, (VideoWriter, GifWriter))]
        try:
            with FrameSinks(sinks, scale) as sink:
                sinks = []  # FrameSinks closes them from here on
                results = play(problem, params, seeds, sink, max_steps=max_steps, env=env, on_episode=on_episode)
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


def describe_returns(returns: Sequence[float]) -> str:
    """"mean +/- std" of episode returns (population std), e.g. "212.40 +/- 31.05"."""
    values = np.asarray(returns, np.float64)
    return f"{values.mean():.2f} +/- {values.std():.2f}"


# -- weight dynamics ---------------------------------------------------------------------
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
    """Play one episode (same env and seed handling as `play`) and record its weights per step.

    Reading `network.weights` applies the pending plasticity update without changing the
    trajectory (the network's contract), so the episode is the one `play` shows.
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

    def on_step(obs, action, reward):
        current = network.weights
        t = len(rewards) + 1
        changes.append([float(np.mean(np.abs(w - p))) for w, p in zip(current, previous)])
        norms.append([float(np.linalg.norm(w)) for w in current])
        for p, w in zip(previous, current):
            p[...] = w
        rewards.append(float(reward))
        if t in schedule:
            snapshots[t] = current[layer].copy()

    ret, steps = run_episode(problem.envs[0], policy, seed, max_steps=max_steps, on_step=on_step)
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
