"""Frames of played episodes: where they come from (a rendering env with the overlay) and where they go.

    env = EpisodeOverlay(render_env(problem), episodes=len(seeds))
    with FrameSinks([Window(fps), VideoWriter("drive.mp4", fps), GifWriter("drive.gif", fps)], scale=0.5) as sink:
        hebbian.playing.play(problem, params, seeds, env=env, on_step=lambda *_: sink(env.render()))

Frames come from a second copy of the problem's env built with render_mode="rgb_array"
(`render_env`): the agent still sees its usual observations. `EpisodeOverlay` is a render
wrapper, one concern like Gymnasium's own: it leaves observations, rewards and the
trajectory alone and draws the episode, the step and the running return on every frame
`render()` returns. A frame sink is any callable taking a uint8 (H, W, 3) frame: `Window`
(a plain pygame window, since not every env has a "human" mode and that one could not
carry the overlay), `VideoWriter` (H.264 mp4) and `GifWriter`; `FrameSinks` feeds several
the same frames and commits or discards their files together.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs
import es
from es.checkpoint import remove_quietly, temp_path
from es.plotting import OutputError, write_atomically
from hebbian.agent import AgentProblem

FrameSink = Callable[[np.ndarray], None]
"""Receives each frame: uint8 (H, W, 3)."""


# -- where frames come from: a rendering env with the overlay ---------------------------------
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


class EpisodeOverlay(gym.Wrapper):
    """Draws "episode i/n", "step t" and "return R" (the running return) on every rendered frame.

    A render wrapper: `step` and `reset` pass through unchanged (they only count episodes,
    steps and reward), `render` returns the wrapped env's rgb_array frame with the text on
    it. `episodes`: the n of "episode i/n" (None: "episode i").
    """

    def __init__(self, env: gym.Env, episodes: int | None = None):
        if env.render_mode != "rgb_array":
            raise ValueError(f"EpisodeOverlay draws on rgb_array frames; the env renders {env.render_mode!r}")
        super().__init__(env)
        self.episodes = episodes
        self.episode, self.t, self.ret = 0, 0, 0.0

    def reset(self, **kwargs):
        self.episode, self.t, self.ret = self.episode + 1, 0, 0.0
        return super().reset(**kwargs)

    def step(self, action):
        result = super().step(action)
        self.t += 1
        self.ret += float(result[1])
        return result

    def lines(self) -> list[str]:
        of = f"/{self.episodes}" if self.episodes is not None else ""
        return [f"episode {self.episode}{of}", f"step {self.t}", f"return {self.ret:.1f}"]

    def render(self) -> np.ndarray:
        return draw_overlay(np.asarray(super().render()), self.lines())


def display_available() -> bool:
    """True where a window can open: an X11 / Wayland display on Linux, always elsewhere."""
    if os.name != "posix" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


_DUMMY_SET = {"value": None}  # the SDL driver render_env chose, so a later Window can undo it


def render_env(problem: AgentProblem) -> gym.Env:
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


# -- where frames go -----------------------------------------------------------------------
MAX_FPS = 1000.0


def check_fps(fps: float) -> float:
    """`fps` as a float; es.UsageError (one line) unless it is above 0 and at most MAX_FPS."""
    fps = float(fps)
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise es.UsageError(f"fps must be a number above 0 and at most {MAX_FPS}, got {fps}")
    return fps


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
        self.fps = check_fps(fps)
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
        self.fps = check_fps(fps)
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
