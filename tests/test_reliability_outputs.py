"""Watching, evaluating and plotting under hostile input and failing disks.

Every bad input or fault is one line on stderr (what is wrong, what to do), exit status 2
for usage errors and 1 for failures after the work ran, never a traceback; outputs are
checked before any episode; a result that cannot be written is printed, not lost; no
temporary file stays behind; a fallback ("latest" skipping a damaged checkpoint) is
announced and recorded.

Read-only places are read-only bind mounts and full disks small tmpfs mounts (we may be
root, for whom chmod stops nothing); the tests that need them skip where mounting fails.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import es
from hebbian import evaluate
from script_main import run_script_main

REPO = Path(__file__).resolve().parent.parent
WATCH = REPO / "scripts" / "watch.py"
EVALUATE = REPO / "scripts" / "evaluate.py"
PLOT = REPO / "scripts" / "plot.py"
EVOLVE = REPO / "scripts" / "evolve.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy",
       "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
ENV.pop("HEBBIAN_TRACEBACK", None)
PAGE = 4096
TMPFS_SIZE = 16 * PAGE


def _run(script, *args, timeout=120):
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, check=False, capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def _one_line(status, stderr, expected_status, *texts):
    assert status == expected_status, stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr
    assert "Traceback" not in stderr
    for text in texts:
        assert text in stderr, stderr


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real CartPole run folder: 3 generations, checkpoints 1..3, best.npz after the last."""
    path = tmp_path_factory.mktemp("reliability") / "cartpole"
    result = _run(EVOLVE, "CartPole-v1", "--popsize", "4", "--hidden", "4", "--generations", "3", "--eval-episodes", "1",
                  "--backend", "serial", "--quiet", "--run-dir", path)
    assert result.returncode == 0, result.stderr
    return path


def _copy(run_dir, tmp_path, name="run") -> Path:
    target = tmp_path / name
    shutil.copytree(run_dir, target)
    return target


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_config(run: Path, edit) -> Path:
    config = json.loads((run / "config.json").read_text())
    edit(config)
    (run / "config.json").write_text(json.dumps(config))
    return run


def _sh(*cmd) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def _mounted(target: Path, *commands):
    target.mkdir(parents=True, exist_ok=True)
    done = []
    try:
        for cmd in commands:
            result = _sh(*cmd)
            if result.returncode != 0:
                pytest.skip(f"cannot mount ({' '.join(cmd)}: {result.stderr.strip() or result.returncode}); "
                            "these checks need root with CAP_SYS_ADMIN")
            done.append(cmd)
        yield target
    finally:
        if done and _sh("umount", str(target)).returncode != 0:
            _sh("umount", "-l", str(target))


@pytest.fixture
def read_only(tmp_path):
    """An empty read-only folder (a read-only bind mount; `.source` is its writable side)."""
    source, target = tmp_path / "ro-source", tmp_path / "ro"
    source.mkdir()
    with _mounted(target, ("mount", "--bind", str(source), str(target)),
                  ("mount", "-o", "remount,bind,ro", str(target))):
        yield target


@pytest.fixture
def read_only_run(run_dir, tmp_path):
    """A copy of the run folder on a read-only bind mount."""
    source, target = tmp_path / "ro-source", tmp_path / "ro"
    shutil.copytree(run_dir, source / "run")
    with _mounted(target, ("mount", "--bind", str(source), str(target)),
                  ("mount", "-o", "remount,bind,ro", str(target))):
        yield target / "run"


@contextlib.contextmanager
def _tmpfs(tmp_path, free_pages: int):
    """A folder on a 64 KiB tmpfs filled up to `free_pages` free pages."""
    with _mounted(tmp_path / "disk", ("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                                      str(tmp_path / "disk"))) as folder:
        with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
            f.write(b"\0" * (TMPFS_SIZE - free_pages * PAGE))
            f.flush()
        free = os.statvfs(folder).f_bavail
        if free != free_pages:
            pytest.skip(f"the tmpfs has {free} free pages, not {free_pages}; cannot stage a full disk")
        yield folder


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a tmpfs with no free space at all."""
    with _tmpfs(tmp_path, 0) as folder:
        yield folder


@pytest.fixture
def nearly_full(tmp_path):
    """A folder on a tmpfs with one free page: a check passes, a write of more than 4 KiB fails."""
    with _tmpfs(tmp_path, 1) as folder:
        yield folder


# -- case 1: which checkpoint was played --------------------------------------------------------
def test_latest_names_the_checkpoint_it_used_and_the_damaged_ones_it_skipped(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    newest = run / "checkpoints" / "gen-000003.npz"
    _flip_a_byte(newest)
    out = tmp_path / "eval.json"
    result = _run(EVALUATE, run, "--checkpoint", "latest", "--backend", "serial", "--episodes", "2", "--eval-json", out)
    _one_line(result.returncode, result.stderr, 0, "warning", str(newest), "sha256 mismatch", "gen-000002.npz")
    report = json.loads(out.read_text())
    assert report["checkpoint"] == "latest" and report["generation"] == 2
    assert report["skipped"] == [f"{newest}: damaged (sha256 mismatch)"]
    assert report["checkpoint_file"] == str(run / "checkpoints" / "gen-000002.npz")
    assert report["label"] == "latest (after generation 2)" and "latest (after generation 2)" in result.stdout
    loaded = evaluate.load_run(run, "latest")
    centre = es.load_arrays(run / "checkpoints" / "gen-000002.npz")[0]["centre"]
    np.testing.assert_array_equal(loaded.params, centre)

    # watching announces it the same way
    gif = tmp_path / "latest.gif"
    watched = _run(WATCH, run, "--checkpoint", "latest", "--gif", gif, "--max-steps", "3")
    _one_line(watched.returncode, watched.stderr, 0, "warning", str(newest))
    assert gif.is_file()

    # nothing skipped: the newest one, and no warning
    clean = evaluate.load_run(run_dir, "latest")
    assert (clean.generation, clean.skipped, clean.label) == (3, [], "latest (after generation 3)")
    assert evaluate.skipped_warning(clean) is None
    best = evaluate.load_run(run_dir, "best")
    assert (best.generation, best.path, best.label) == (3, run_dir / "best.npz", "best (after generation 3)")
    assert evaluate.load_run(run_dir, 2).generation == 2


def test_damaged_best_fails_in_one_line_and_plays_nothing_else(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    _flip_a_byte(run / "best.npz")
    result = _run(EVALUATE, run, "--backend", "serial", "--episodes", "2")
    _one_line(result.returncode, result.stderr, 2, "best.npz is damaged", "--checkpoint latest")
    assert not (run / "eval.json").exists() and result.stdout == ""


# -- case 2: outputs that cannot be written -----------------------------------------------------
OUTPUTS = {  # flag -> (script, file name, extra arguments)
    "--video": (WATCH, "out.mp4", ("--max-steps", "3")),
    "--gif": (WATCH, "out.gif", ("--max-steps", "3")),
    "--weights-plot": (WATCH, "weights.png", ("--max-steps", "3")),
    "--eval-json": (EVALUATE, "eval.json", ("--backend", "serial", "--episodes", "2")),
    "--out": (PLOT, "fitness.png", ()),
}


@pytest.mark.parametrize("place", ["a folder", "under a file", "read-only", "full disk"])
def test_an_output_that_cannot_be_written_fails_before_any_episode(place, run_dir, tmp_path, request, capsys):
    if place == "read-only":
        folder = request.getfixturevalue("read_only")
    elif place == "full disk":
        folder = request.getfixturevalue("full_disk")
    else:
        folder = tmp_path / "outputs"
        folder.mkdir()
        (folder / "a-file").write_text("not a folder")
    before = _listing(folder)
    expected = {"a folder": "is a folder", "under a file": "is a file, not a folder",
                "read-only": "Read-only file system", "full disk": "No space left on device"}[place]
    for k, (flag, (script, name, extra)) in enumerate(OUTPUTS.items()):
        if place == "a folder":
            target = folder / f"{k}-{name}"
            target.mkdir()
            before = _listing(folder)
        elif place == "under a file":
            target = folder / "a-file" / name
        else:
            target = folder / name
        argv = [run_dir, flag, target, *extra]
        if k == 0:  # one real process per place for the exit status itself
            result = _run(script, *argv)
            status, out, err = result.returncode, result.stdout, result.stderr
        else:
            status, out, err = run_script_main(script, argv, capsys)
        _one_line(status, err, 2, str(target), expected)
        assert "episode" not in out and out == "", out  # nothing was played
        assert _listing(folder) == before  # no probe, no temporary file, nothing half-written
    assert not (run_dir / "eval.json").exists() and not (run_dir / "fitness.png").exists()


def test_missing_output_folders_are_created(run_dir, tmp_path):
    gif = tmp_path / "new" / "deeper" / "out.gif"
    result = _run(WATCH, run_dir, "--gif", gif, "--max-steps", "3")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert gif.is_file() and f"frames -> {gif}" in result.stdout
    assert _listing(gif.parent) == ["out.gif"]


def test_default_outputs_in_a_read_only_run_folder_say_where_else_to_write(read_only_run, capsys):
    result = _run(EVALUATE, read_only_run, "--backend", "serial", "--episodes", "2")
    _one_line(result.returncode, result.stderr, 2, f"{read_only_run}/eval.json", "Read-only file system",
              "--eval-json")
    status, _, err = run_script_main(PLOT, [read_only_run], capsys)
    _one_line(status, err, 2, f"{read_only_run}/fitness.png", "Read-only file system", "--out")


def test_disk_full_after_the_evaluation_prints_the_result_instead(run_dir, nearly_full):
    out = nearly_full / "eval.json"
    result = _run(EVALUATE, run_dir, "--backend", "serial", "--episodes", "300", "--eval-json", out)
    _one_line(result.returncode, result.stderr, 1, str(out), "No space left on device", "stdout")
    report = json.loads(result.stdout)  # stdout is exactly the JSON eval.json would hold
    assert report["episodes"] == len(report["returns"]) == 300
    assert report["mean"] == pytest.approx(np.mean(report["returns"]))
    assert _listing(nearly_full) == ["filler"]  # no temporary file left behind


@pytest.mark.parametrize("flag", ["--video", "--gif", "--weights-plot", "--out"])
def test_disk_full_while_writing_a_file_is_one_line_and_leaves_nothing(flag, run_dir, nearly_full):
    script, name, _ = OUTPUTS[flag]
    target = nearly_full / name
    # 90 frames: far more than the one free page, without encoding whole CartPole episodes
    extra = ("--episodes", "3", "--max-steps", "30") if flag in ("--video", "--gif") else ()
    result = _run(script, run_dir, flag, target, *extra)
    _one_line(result.returncode, result.stderr, 1, "cannot write", str(target), "No space left on device")
    assert _listing(nearly_full) == ["filler"]  # neither the file nor its temporary copy


# -- case 3: config.json that does not fit this machine -----------------------------------------
def test_unknown_env_id_in_config_json_is_one_line(run_dir, tmp_path, capsys):
    run = _edit_config(_copy(run_dir, tmp_path), lambda c: c["env"].update(env_id="NoSuchEnv-v9"))
    evaluated = _run(EVALUATE, run, "--backend", "serial", "--episodes", "2")
    _one_line(evaluated.returncode, evaluated.stderr, 2, "'NoSuchEnv-v9'", "not registered here", "install")
    status, _, err = run_script_main(WATCH, [run, "--gif", tmp_path / "x.gif", "--max-steps", "3"], capsys)
    _one_line(status, err, 2, "'NoSuchEnv-v9'")
    assert not (tmp_path / "x.gif").exists()
    # a LoadedRun built by hand still fails in one line, not deep inside the env package
    good = evaluate.load_run(run_dir)
    bad = evaluate.LoadedRun(run, json.loads((run / "config.json").read_text()), good.params, "best", "best")
    with pytest.raises(es.UsageError, match="NoSuchEnv-v9"):
        evaluate.make_problem(bad)


def test_a_bad_value_in_config_json_is_one_line(run_dir, tmp_path, capsys):
    run = _edit_config(_copy(run_dir, tmp_path), lambda c: c["agent"].update(hidden="lots"))
    result = _run(EVALUATE, run, "--backend", "serial", "--episodes", "2")
    _one_line(result.returncode, result.stderr, 2, "hidden", "'lots'", "config.json")
    # on every part of the watch path, LoadedRun's properties included
    good = evaluate.load_run(run_dir)
    bad = evaluate.LoadedRun(run, json.loads((run / "config.json").read_text()), good.params, "best", "best")
    for read in (lambda: bad.settings, lambda: bad.env_id, lambda: bad.seed, lambda: evaluate.make_problem(bad)):
        with pytest.raises(es.UsageError, match="lots"):
            read()
    seeded = _edit_config(_copy(run_dir, tmp_path, "seeded"), lambda c: c["es_run"].update(seed="abc"))
    status, _, err = run_script_main(EVALUATE, [seeded, "--backend", "serial", "--episodes", "2"], capsys)
    _one_line(status, err, 2, "es_run seed", "'abc'")


def test_an_old_env_id_is_announced_not_silently_replaced(run_dir, tmp_path):
    run = _edit_config(_copy(run_dir, tmp_path), lambda c: c["env"].update(env_id="LunarLander-v2"))
    try:
        loaded = evaluate.load_run(run)
    except es.UsageError as e:  # this Gymnasium has no LunarLander at all
        pytest.skip(str(e))
    assert loaded.env_id == "LunarLander-v2" and loaded.played_env_id != "LunarLander-v2"


# -- case 4: hostile command lines -------------------------------------------------------------
WATCH_CASES = [  # (arguments after RUN_DIR or None for a file as RUN_DIR, status, text)
    (None, 2, "is a file, not a run folder"),
    (("--episodes", "0"), 2, "--episodes must be a positive"),
    (("--scale", "weird"), 2, "invalid float value: 'weird'"),
    (("--fps", "nan", "--gif", "x.gif"), 2, "--fps must be"),
    (("--fps", "inf", "--gif", "x.gif"), 2, "--fps must be"),
    (("--scale", "nan", "--gif", "x.gif"), 2, "--scale must be between"),
    (("--checkpoint", "-1"), 2, "must be 'best', 'latest' or a generation"),
    (("--checkpoint", "0"), 2, "no checkpoint after 0 generations"),
    (("--weights-layer", "1"), 2, "add --weights-plot"),
    (("--weights-plot", "w.txt"), 2, "needs a file ending in .png"),
    (("--eval-json", "e.json"), 2, "belongs to the evaluation, which is its own command now: scripts/evaluate.py"),
    (("--workers", "2", "--gif", "x.gif"), 2, "belongs to the evaluation, which is its own command now"),
    (("--no-render",), 2, "the evaluation is its own command now: scripts/evaluate.py RUN --episodes 100"),
    (("--render", "none"), 2, "nothing to write"),
    (("--bogus",), 2, "unrecognized arguments: --bogus"),
]
EVALUATE_CASES = [  # the same for scripts/evaluate.py
    (None, 2, "is a file, not a run folder"),
    (("--episodes", "0"), 2, "--episodes must be a positive"),
    (("--workers", "0"), 2, "--workers must be a positive"),
    (("--fps", "10"), 2, "unrecognized arguments: --fps"),  # frames belong to watch.py
    (("--checkpoint", "-1"), 2, "must be 'best', 'latest' or a generation"),
    (("--backend", "mpi"), 2, "invalid choice: 'mpi'"),
    (("--eval-json", "RUN/config.json"), 2, "would overwrite a file of the run"),
    (("--eval-json", "RUN/checkpoints/gen-000001.json"), 2, "would overwrite a file of the run"),
]


@pytest.mark.parametrize("script, cases, real", [(WATCH, WATCH_CASES, 2), (EVALUATE, EVALUATE_CASES, 3)],
                         ids=["watch", "evaluate"])
def test_hostile_watch_command_lines_are_one_line(script, cases, real, run_dir, tmp_path, capsys):
    config_before = (run_dir / "config.json").read_bytes()
    checkpoints_before = _listing(run_dir / "checkpoints")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a run")
    for k, (extra, expected, text) in enumerate(cases):
        if extra is None:
            argv = [a_file]
        else:
            argv = [run_dir, *(str(tmp_path / a) if a.endswith((".gif", ".json", ".txt")) and "/" not in a else
                               a.replace("RUN", str(run_dir)) for a in extra)]
        text = text.replace("RUN", str(run_dir))
        if k == real:  # argparse's own errors: a real process, one line instead of the usage block
            result = _run(script, *argv)
            status, out, err = result.returncode, result.stdout, result.stderr
        else:
            status, out, err = run_script_main(script, argv, capsys)
        _one_line(status, err, expected, text)
        assert "episode" not in out
    assert (run_dir / "config.json").read_bytes() == config_before
    assert _listing(run_dir / "checkpoints") == checkpoints_before
    assert _listing(tmp_path) == ["a-file"]


PROGRESS_HEADER = "generation,wall_s,env_steps,fitness_mean,fitness_max,eval_mean,eval_std\n"


def test_hostile_plot_inputs_are_one_line(run_dir, tmp_path, capsys):
    def folder(name, progress: bytes | None = None, as_dir=False):
        path = tmp_path / name
        path.mkdir()
        if as_dir:
            (path / "progress.csv").mkdir()
        elif progress is not None:
            (path / "progress.csv").write_bytes(progress)
        return path

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        ([a_file], 2, "is a file, not a run folder"),
        ([folder("no-progress")], 2, "has no progress.csv"),
        ([folder("progress-is-a-folder", as_dir=True)], 2, "progress.csv is not a file"),
        ([folder("not-text", PROGRESS_HEADER.encode() + b"0,1,10,2,3,,\n\xff\xfe,,\n")], 2, "is not text"),
        ([folder("torn-middle", (PROGRESS_HEADER + "0,1,10,2,3,,\n1,2,3\n2,3,20,4,5,,\n").encode())], 2,
         "line 3 has 3 values"),
        ([folder("letters", (PROGRESS_HEADER + "0,1,10,x,3,,\n").encode())], 2, "non-numeric value"),
        ([run_dir, "--title", "$\\foo$", "--out", tmp_path / "t.png"], 2, "cannot be drawn"),
        ([run_dir, "--labels", "a", "b"], 2, "one label per run"),
        ([run_dir, "--format", "bmp"], 2, "invalid choice: 'bmp'"),
    ]
    for k, (argv, expected, text) in enumerate(cases):
        if k == len(cases) - 1:  # argparse's own errors: a real process
            result = _run(PLOT, *argv)
            status, out, err = result.returncode, result.stdout, result.stderr
        else:
            status, out, err = run_script_main(PLOT, argv, capsys)
        _one_line(status, err, expected, text)
        assert out == ""
    assert not (tmp_path / "t.png").exists()

    # a torn last line (a run killed or still writing mid-line) is left out, and said so
    torn = folder("torn-last", (PROGRESS_HEADER + "0,1,10,2,3,,\n1,2,3.").encode())
    status, out, err = run_script_main(PLOT, [torn, "--out", tmp_path / "torn.png"], capsys)
    _one_line(status, err, 0, "warning", "last line is incomplete", "left out")
    assert out.strip() == str(tmp_path / "torn.png")
    # no wall time or env steps recorded at all: a plot, not a RuntimeWarning
    no_time = folder("no-time", (PROGRESS_HEADER + "0,,,1,2,,\n1,,,2,3,,\n").encode())
    status, out, err = run_script_main(PLOT, [no_time, "--out", tmp_path / "no-time.png"], capsys)
    assert status == 0 and err == "", err
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name or ".probe" in p.name]
    assert leftovers == []
