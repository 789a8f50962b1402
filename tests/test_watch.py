"""scripts/watch.py and scripts/evaluate.py on real run folders: videos, GIFs, the window, eval.json,
the weights plot, errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from es import seeding
from hebbian import evaluate
from script_main import run_script_main

REPO = Path(__file__).resolve().parent.parent
WATCH = REPO / "scripts" / "watch.py"
EVALUATE = REPO / "scripts" / "evaluate.py"
EVOLVE = REPO / "scripts" / "evolve.py"


def _run(script, *args, env=None, timeout=180, prefix=()):
    return subprocess.run([*prefix, sys.executable, str(script), *map(str, args)], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=timeout, env=env)


def _episodes(stdout: str) -> list[tuple[float, int]]:
    return [(float(r), int(s)) for r, s in re.findall(r"episode \d+: return (-?[\d.]+) \((\d+) steps\)", stdout)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real CartPole run folder: 3 generations, held-out evaluation every generation."""
    path = tmp_path_factory.mktemp("watch") / "cartpole"
    result = _run(EVOLVE, "CartPole-v1", "--backend", "serial", "--popsize", "8", "--generations", "3", "--hidden", "8",
                  "--eval-every", "1", "--eval-episodes", "3", "--run-dir", path, "--quiet")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def ant_run_dir(tmp_path_factory):
    """A real (untrained) quadruped run folder: 1 generation of 2 members."""
    path = tmp_path_factory.mktemp("watch") / "ant"
    result = _run(EVOLVE, "AntBulletEnv-v0", "--backend", "serial", "--popsize", "2", "--generations", "1",
                  "--hidden", "4", "--eval-episodes", "1", "--run-dir", path, "--quiet")
    assert result.returncode == 0, result.stderr
    return path


def test_video_has_one_frame_per_step_at_the_render_size_with_the_overlay(run_dir, tmp_path):
    import imageio.v3 as iio

    video = tmp_path / "out.mp4"
    result = _run(WATCH, run_dir, "--video", video, "--episodes", "2", "--max-steps", "25")
    assert result.returncode == 0, result.stderr
    episodes = _episodes(result.stdout)
    assert len(episodes) == 2
    frames = iio.imread(video)  # decoded by imageio-ffmpeg
    assert frames.shape == (sum(s for _, s in episodes), 400, 600, 3)  # CartPole renders 600x400
    # the overlay's dark box sits in the top-left corner of CartPole's white background
    assert frames[:, 4:12, 4:40].mean() < 160 < frames[:, 4:12, 300:340].mean()


def test_gif_with_scale(run_dir, tmp_path):
    import imageio.v3 as iio

    gif = tmp_path / "out.gif"
    result = _run(WATCH, run_dir, "--checkpoint", "latest", "--gif", gif, "--scale", "0.5", "--max-steps", "12")
    assert result.returncode == 0, result.stderr
    (_, steps), = _episodes(result.stdout)
    frames = iio.imread(gif)
    assert frames.shape[:3] == (steps, 200, 300)


def test_evaluation_on_ray_writes_eval_json_and_watch_replays_the_same_episodes(run_dir, tmp_path):
    out = tmp_path / "eval.json"
    result = _run(EVALUATE, run_dir, "--episodes", "6", "--backend", "ray", "--workers", "2", "--eval-json", out)
    assert result.returncode == 0, result.stderr[-3000:]
    line, = result.stdout.strip().splitlines()
    report = json.loads(out.read_text())
    assert line.startswith(f"{report['mean']:.2f} +/- {report['std']:.2f}")
    for key in ("mean", "std", "min", "max", "returns", "seeds", "steps", "episodes", "env_id", "protocol", "label"):
        assert key in report
    assert (report["backend"], report["workers"]) == ("ray", 2)
    returns = np.array(report["returns"])
    assert report["episodes"] == len(returns) == len(report["seeds"]) == 6
    assert report["mean"] == pytest.approx(returns.mean()) and report["std"] == pytest.approx(returns.std())
    assert (report["min"], report["max"]) == (returns.min(), returns.max())
    assert report["steps"] == [int(r) for r in returns]  # CartPole pays 1 per step
    # test seeds: out of the training range and not the run's own held-out seeds
    seeds = report["seeds"]
    assert len(set(seeds)) == 6 and min(seeds) >= 2**31
    assert not set(seeds) & set(seeding.held_out_seeds(0, 3))

    # watched episode k is evaluation episode k (same seeds, env options and code path),
    # played here in this process: the Ray workers computed the same numbers
    watched = _run(WATCH, run_dir, "--video", tmp_path / "v.mp4", "--episodes", "3")
    assert watched.returncode == 0, watched.stderr
    assert [r for r, _ in _episodes(watched.stdout)] == report["returns"][:3]


def test_weights_plot_is_an_image_of_the_documented_size(run_dir, tmp_path):
    from PIL import Image

    plot = tmp_path / "weights.png"
    result = _run(WATCH, run_dir, "--weights-plot", plot, "--weights-layer", "1")
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(plot).convert("RGB"))
    assert image.shape == (800, 1200, 3)  # hebbian.weight_trace.PLOT_SIZE_IN x PLOT_DPI
    assert image.std() > 20  # curves and heat maps, not a blank canvas


def test_weight_trace_records_every_step(run_dir):
    from hebbian import playing, weight_trace

    run = evaluate.load_run(run_dir, "best")
    problem = evaluate.make_problem(run)
    seed = evaluate.run_test_seeds(run, 1)[0]
    trace = weight_trace.record_weights(problem, run.params, seed, max_steps=30)
    assert trace.norms.shape == (trace.steps + 1, 2) and trace.mean_abs_change.shape == (trace.steps, 2)
    assert trace.layer_shapes == [(4, 8), (8, 2)] and trace.layer == 0
    assert 0 in trace.snapshots and trace.steps in trace.snapshots
    assert np.all(trace.mean_abs_change[0] > 0)  # a Hebbian rule changes the weights at once
    # recording does not change the episode: same return as playing it
    (played,) = playing.play(problem, run.params, [seed], max_steps=30)
    assert (played.ret, played.steps) == (trace.ret, trace.steps)


def test_weight_trace_plays_the_evaluation_episode_bit_for_bit():
    """The weights figure claims to show the evaluation's episode: reading the weights at every
    step must not change a single reward. Pendulum: continuous actions and a reward that depends
    on the exact state, a normalised network (as on pixel tasks) and 200 steps, so a rounding
    difference in any action shows (CartPole's reward of 1 per step could not)."""
    from hebbian import playing, weight_trace
    from hebbian.agent import AgentProblem
    from hebbian.config import AgentConfig

    problem = AgentProblem("Pendulum-v1", AgentConfig(hidden=[32, 16]))
    params = np.random.default_rng(5).uniform(-1, 1, problem.num_params).astype(np.float32)
    trace = weight_trace.record_weights(problem, params, 11)
    rewards = []
    (played,) = playing.play(problem, params, [11], on_step=lambda i, obs, action, reward: rewards.append(reward))
    assert trace.steps == played.steps == 200
    np.testing.assert_array_equal(trace.rewards, np.array(rewards, np.float64))
    assert trace.ret == played.ret


def test_test_seeds_are_prefix_stable_and_skip_excluded():
    first = seeding.test_seeds(7, 5)
    assert seeding.test_seeds(7, 8)[:5] == first
    skipped = seeding.test_seeds(7, 5, exclude=first[:2])
    assert skipped == seeding.test_seeds(7, 7)[2:7]
    assert not set(first) & set(seeding.held_out_seeds(7, 100))


def test_quadruped_on_another_morphology(ant_run_dir, tmp_path):
    out = tmp_path / "eval.json"
    result = _run(EVALUATE, ant_run_dir, "--checkpoint", "latest", "--episodes", "1", "--backend", "serial",
                  "--morphology", "damaged-left", "--eval-json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["env_options"]["morphology"] == "damaged-left"
    assert report["env_options"]["no_progress_patience"] is None  # the protocol plays full episodes

    bad = _run(EVALUATE, ant_run_dir, "--checkpoint", "latest", "--morphology", "three-legged")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown morphology 'three-legged'" in bad.stderr


def test_bad_input_gives_one_line_and_exit_status_2(run_dir, tmp_path, capsys, monkeypatch):
    # one real process for the exit status itself
    missing = _run(EVALUATE, tmp_path / "missing")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr

    def fails(*args, text, script=WATCH):
        status, _, err = run_script_main(script, args, capsys)
        assert status == 2 and err.count("\n") == 1 and text in err, err

    fails(run_dir, "--checkpoint", "99", script=EVALUATE, text="no checkpoint after 99 generations")
    fails(run_dir, "--checkpoint", "newest", script=EVALUATE, text="must be 'best', 'latest' or a generation")
    fails(run_dir, "--morphology", "damaged-left", script=EVALUATE, text="quadruped only")
    fails(run_dir, "--video", tmp_path / "x.mp4", script=EVALUATE, text="unrecognized arguments: --video")
    # the evaluation left watch: its old flag says where it went, and nothing is played
    fails(run_dir, "--no-render", "--video", tmp_path / "x.mp4",
          text=f"the evaluation is its own command now: scripts/evaluate.py {run_dir} --episodes 100")
    fails(run_dir, "--video", tmp_path / "x.avi2", text="needs a file ending in")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    fails(run_dir, "--render", "human", "--max-steps", "3", text="no display")

    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    data = bytearray((damaged / "best.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "best.npz").write_bytes(bytes(data))
    fails(damaged, script=EVALUATE, text="damaged")
    fails(damaged, "--gif", tmp_path / "x.gif", text="damaged")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is not installed (apt-get install xvfb); "
                                                             "the window path needs an X display")
def test_window_under_xvfb(run_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    result = _run(WATCH, run_dir, "--render", "human", "--max-steps", "15", "--fps", "200", env=env,
                  prefix=("xvfb-run", "-a", "-s", "-screen 0 800x600x24"))
    assert result.returncode == 0, result.stderr
    assert "into a window (x11)" in result.stdout
    (_, steps), = _episodes(result.stdout)
    assert steps <= 15


def test_protocol_scores_on_the_reference_environments():
    from gymnasium.envs.box2d.car_racing import CarRacing

    options = evaluate.protocol_env_options("CarRacing-v2")
    assert options == {"neg_reward_limit": None, "exact_env": True}
    import envs

    assert type(envs.make("CarRacing-v2", **options).unwrapped) is CarRacing
    assert evaluate.protocol_env_options("AntBulletEnv-v0") == {"no_progress_patience": None}


def test_closing_the_window_keeps_the_frames_so_far_and_the_finished_episodes(run_dir, tmp_path, monkeypatch):
    import imageio.v3 as iio

    from hebbian import frames
    from hebbian.watch import watch

    class ClosedAfter:  # a window the user closes at its 30th frame
        driver = "fake"

        def __init__(self, fps, title=""):
            self.frames = 0

        def __call__(self, frame):
            if self.frames == 29:
                raise frames.WindowClosed()
            self.frames += 1

        def close(self):
            pass

    monkeypatch.setattr(frames, "Window", ClosedAfter)
    run = evaluate.load_run(run_dir, "best")
    problem = evaluate.make_problem(run)
    seeds = evaluate.run_test_seeds(run, 3)
    full = watch(problem, run.params, seeds, gif=tmp_path / "all.gif", max_steps=20)
    gif = tmp_path / "closed.gif"
    saved = []
    results = watch(problem, run.params, seeds, window=True, gif=gif, max_steps=20,
                    on_saved=lambda path, n: saved.append((path, n)))
    assert results == full[:1] and full[0].steps == 20  # episode 2 was cut by the closed window
    # the window comes first among the sinks: the GIF has the 29 frames shown before the close
    assert saved == [(gif, 29)] and iio.imread(gif).shape[0] == 29
