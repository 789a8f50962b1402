"""Run folders and checkpoints under bad input and faults: one clear line, nothing saved lost.

Real files throughout; a real second process for the lock and for SIGKILL, a real tmpfs for
a full disk and a read-only bind mount for EROFS (skipped where mounting is not allowed).
"""
from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from es_problems import NoisySphere, Sphere

import es
from es import checkpoint as ckpt
from es import run as es_run
from es import run_folder
from es.errors import StorageError  # not (yet) re-exported as es.StorageError

TESTS_DIR = Path(__file__).resolve().parent
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR.parent), str(TESTS_DIR)])}
N = 6


def strategy():
    return es.make_strategy("openai-es", N, 6, 0.3, lr=0.2, optimizer="adam")


def run(run_dir, generations=6, problem=None, resume=False, **kw):
    """A tiny run: 6 members x 1 episode per generation, held-out evaluation (2 episodes) every 2."""
    problem = problem or NoisySphere(N)
    kw = {"episodes": 1, "seed": 5, "eval_every": 2, "eval_episodes": 2, "progress": "none", **kw}
    return es.evolve(problem, strategy(), es.SerialEvaluator(problem), run_dir, generations=generations,
                     resume=resume, config={"env_id": "Sphere"}, **kw)


# evaluate calls of `run`: generation g = calls 6g+1..6g+6, plus 2 held-out calls after odd g
FIRST_CALL_OF_GEN = {0: 1, 1: 7, 2: 15, 3: 21}

CHILD = (
    "import os, signal, sys\n"
    "import es\n"
    "from es_problems import NoisySphere, Slow\n"
    "run_dir, delay, kill_at = sys.argv[1], float(sys.argv[2]), sys.argv[3]\n"
    "if kill_at:  # die by SIGKILL in the middle of writing this file (temp written, not yet moved)\n"
    "    real = os.fsync\n"
    "    def fsync(fd):\n"
    "        if kill_at in os.readlink(f'/proc/self/fd/{fd}'):\n"
    "            os.kill(os.getpid(), signal.SIGKILL)\n"
    "        real(fd)\n"
    "    os.fsync = fsync\n"
    "problem = Slow(NoisySphere(6), delay)\n"
    "strategy = es.make_strategy('openai-es', 6, 6, 0.3, lr=0.2, optimizer='adam')\n"
    "es.evolve(problem, strategy, es.SerialEvaluator(problem), run_dir, generations=6, episodes=1, seed=5,\n"
    "          eval_every=2, eval_episodes=2, progress='none', config={'env_id': 'Sphere'})\n"
)


class AtCall:
    """Wraps a problem; calls `action()` just before its `at`-th evaluate (1-based), once."""

    def __init__(self, inner, at, action):
        self.inner, self.at, self.action, self.calls = inner, at, action, 0
        self.num_params = inner.num_params

    def initial_params(self, seed):
        return self.inner.initial_params(seed)

    def evaluate(self, params, seeds):
        self.calls += 1
        if self.calls == self.at:
            self.action()
        return self.inner.evaluate(params, seeds)


class NaNFromCall(AtCall):
    """A buggy problem: NaN fitness from its `at`-th evaluate on (after calling `action`)."""

    def evaluate(self, params, seeds):
        f, steps, returns = super().evaluate(params, seeds)
        return (float("nan") if self.calls >= self.at else f), steps, returns


def rows(run_dir):
    """progress.csv without the wall-clock column."""
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]


def snapshot(folder):
    """{relative path: bytes} of every file under `folder` (the lock file's pid aside)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != es_run.LOCK_NAME}


def temps(folder):
    return [p.name for p in Path(folder).rglob(".*.tmp-*")]


def one_line(info, *fragments):
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted 6-generation run every resumed run must equal."""
    folder = tmp_path_factory.mktemp("straight") / "r"
    return run(folder), rows(folder)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A 4-generation run (checkpoints 2, 3, 4) to copy and damage."""
    folder = tmp_path_factory.mktemp("base") / "r"
    run(folder, generations=4)
    return folder


@pytest.fixture
def copy_of_base(base, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(base, folder)
    return folder


def assert_equals_straight(result, run_dir, straight):
    np.testing.assert_array_equal(result.centre, straight[0].centre)
    assert rows(run_dir) == straight[1]


def _mount(*args):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting needs root and the mount command")
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount here ({done.stderr.strip()}); CI may not allow it")


def _umount(point):
    subprocess.run(["umount", str(point)], capture_output=True, check=False)


@pytest.fixture
def tmpfs(tmp_path):
    """A real 4 MiB tmpfs (to fill up)."""
    point = tmp_path / "tmpfs"
    point.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point))
    try:
        yield point
    finally:
        _umount(point)


def fill(folder):
    """Fill the file system of `folder` to the last byte (returns the ballast file)."""
    ballast = Path(folder) / "ballast"
    with open(ballast, "wb", buffering=0) as f:
        for chunk in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    return ballast


@pytest.fixture
def bind(tmp_path):
    """(mount point, set_readonly(flag)): a bind mount of a fresh folder that can be made read-only."""
    source, point = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    point.mkdir()
    _mount("--bind", str(source), str(point))

    def set_readonly(flag):
        done = subprocess.run(["mount", "-o", f"remount,bind,{'ro' if flag else 'rw'}", str(point)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot remount read-only here ({done.stderr.strip()})")

    try:
        yield point, set_readonly
    finally:
        _umount(point)


# -- 1. a fresh run refuses a folder that is not empty and not a run -------------------------

def test_fresh_run_refuses_a_non_empty_folder_a_file_and_a_run(tmp_path, straight):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    before = sorted(os.listdir(other))
    with pytest.raises(es.UsageError) as info:
        run(other)
    one_line(info, f"{other} is not empty and not a run folder", "'notes.txt'", "pick an empty or new folder")
    assert sorted(os.listdir(other)) == before  # not even a .lock was written

    a_file = tmp_path / "a-file"
    a_file.write_text("data")
    with pytest.raises(es.UsageError) as info:
        run(a_file)
    one_line(info, f"{a_file} is a file, not a folder")
    assert a_file.read_text() == "data"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert_equals_straight(run(empty), empty, straight)  # an empty existing folder is fine
    saved = snapshot(empty)
    with pytest.raises(es.UsageError) as info:
        run(empty)
    one_line(info, "already holds a run; resume it")
    assert snapshot(empty) == saved


# -- 2. the remains of a run without config.json ----------------------------------------------

def test_remains_of_a_run_without_config_are_refused(copy_of_base, tmp_path):
    (copy_of_base / "config.json").unlink()
    saved = snapshot(copy_of_base)
    for resume in (False, True):
        with pytest.raises(es.UsageError) as info:
            run(copy_of_base, resume=resume)
        one_line(info, "holds the remains of a run without config.json", "checkpoints, progress.csv, best.npz")
    with pytest.raises(es.UsageError, match="remains of a run without config.json"):
        es.load_params(copy_of_base, "latest")
    assert snapshot(copy_of_base) == saved

    only_progress = tmp_path / "p"
    only_progress.mkdir()
    (only_progress / "progress.csv").write_text(",".join(es.COLUMNS) + "\n")
    with pytest.raises(es.UsageError, match=r"remains of a run without config.json \(progress.csv\)"):
        run(only_progress)


# -- 3. one writer per run folder ---------------------------------------------------------------

def test_a_second_process_is_locked_out_and_a_killed_holder_blocks_nothing(tmp_path, straight):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run_dir = tmp_path / "r"
    child = subprocess.Popen([sys.executable, str(script), str(run_dir), "0.05", ""], env=CHILD_ENV)
    try:
        deadline = time.monotonic() + 60
        while not ckpt.checkpoint_path(run_dir, 1).with_suffix(".json").exists():
            assert child.poll() is None and time.monotonic() < deadline, "child ended or stalled"
            time.sleep(0.01)
        for resume in (True, False):  # resume is refused by the lock, a fresh run by config.json
            with pytest.raises(es.UsageError) as info:
                run(run_dir, resume=resume)
            if resume:
                one_line(info, f"{run_dir} is in use by another run (pid {child.pid}); wait for it or stop it")
        assert child.poll() is None, "the refused attempts must not disturb the running child"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert (run_dir / es_run.LOCK_NAME).read_text().strip() == str(child.pid)  # the stale file stays ...
    assert_equals_straight(run(run_dir, resume=True), run_dir, straight)  # ... and blocks nothing


def test_lock_is_released_on_exception(tmp_path):
    """In one process a leaked lock would block the next evolve on the folder."""
    problem = NaNFromCall(Sphere(N), 3, lambda: None)
    with pytest.raises(es.EvaluationError):
        run(tmp_path / "r", problem=problem)
    run(tmp_path / "r", resume=True, generations=2)  # not "in use"


# -- 4. resume refuses what would lose or mix history ---------------------------------------------

def test_resume_refuses_a_checkpoint_of_another_run(copy_of_base, tmp_path):
    other = tmp_path / "other"
    run(other, generations=4, seed=6)
    for suffix in (".npz", ".json"):
        shutil.copy(ckpt.checkpoint_path(other, 4).with_suffix(suffix), ckpt.checkpoint_path(copy_of_base, 4).with_suffix(suffix))
    saved = snapshot(copy_of_base)
    with pytest.raises(es.CheckpointError) as info:
        run(copy_of_base, resume=True)
    one_line(info, "gen-000004.npz was written by another run (seed=6, not 5); move it out of")
    with pytest.raises(es.CheckpointError, match="another run"):
        es.load_params(copy_of_base, "latest")
    assert snapshot(copy_of_base) == saved


def test_resume_refuses_when_progress_history_is_missing_or_short(copy_of_base):
    progress = copy_of_base / "progress.csv"
    text = progress.read_text()
    progress.unlink()
    saved = snapshot(copy_of_base)
    with pytest.raises(es.UsageError) as info:
        run(copy_of_base, resume=True)
    one_line(info, "progress.csv is missing but gen-000004.npz holds 4 generations", "restore progress.csv")
    assert snapshot(copy_of_base) == saved
    progress.write_text("".join(text.splitlines(keepends=True)[:3]))  # header + generations 0, 1
    saved = snapshot(copy_of_base)
    with pytest.raises(es.UsageError) as info:
        run(copy_of_base, resume=True)
    one_line(info, "progress.csv does not hold one row for each of the 4 generations in gen-000004.npz (it has 2)",
             "history was lost")
    assert snapshot(copy_of_base) == saved


def test_resume_refuses_checkpoints_without_metadata_and_progress_without_checkpoints(copy_of_base, tmp_path):
    runs = copy_of_base.parent / "runs"
    shutil.copytree(copy_of_base, runs)
    for path in (copy_of_base / "checkpoints").glob("*.json"):
        path.unlink()  # only the .npz files are left
    saved = snapshot(copy_of_base)
    with pytest.raises(es.CheckpointError) as info:
        run(copy_of_base, resume=True)
    one_line(info, "no usable checkpoint", "gen-000004.json is missing")
    assert snapshot(copy_of_base) == saved

    shutil.rmtree(runs / "checkpoints")  # 4 rows of history, no checkpoint at all
    with pytest.raises(es.UsageError) as info:
        run(runs, resume=True)
    one_line(info, "progress.csv records 4 generations but checkpoints/ holds no checkpoint")


def test_a_newest_npz_without_json_is_skipped_like_a_damaged_one(copy_of_base, straight, capsys):
    """A crash between moving the npz and its JSON into place: resume from the one before."""
    ckpt.checkpoint_path(copy_of_base, 4).with_suffix(".json").unlink()
    np.testing.assert_array_equal(es.load_params(copy_of_base, "latest"), es.load_params(copy_of_base, 3))
    assert_equals_straight(run(copy_of_base, resume=True), copy_of_base, straight)
    assert "gen-000004.json is missing" in capsys.readouterr().err


# -- 5. checkpoints that verify but hold the wrong content ---------------------------------------

def _bad_centre(fn):
    return lambda arrays, meta: arrays.update(centre=fn(arrays["centre"]))


BAD_CONTENT = {
    "centre too short": _bad_centre(lambda c: c[:-1]),
    "centre float64": _bad_centre(lambda c: c.astype(np.float64)),
    "centre 2-d": _bad_centre(lambda c: c.reshape(2, 3)),
    "centre NaN": _bad_centre(lambda c: np.where(np.arange(c.size) == 0, np.nan, c).astype(np.float32)),
    "centre inf": _bad_centre(lambda c: np.full_like(c, np.inf)),
    "no centre": lambda arrays, meta: arrays.pop("centre"),
    "no generation": lambda arrays, meta: meta.pop("generation"),
    "generation text": lambda arrays, meta: meta.update(generation="4"),
    "generation bool": lambda arrays, meta: meta.update(generation=True),
    "generation negative": lambda arrays, meta: meta.update(generation=-4),
    "generation not the file's": lambda arrays, meta: meta.update(generation=3),
    "no env_steps": lambda arrays, meta: meta.pop("env_steps"),
    "env_steps float": lambda arrays, meta: meta.update(env_steps=24.5),
    "env_steps negative": lambda arrays, meta: meta.update(env_steps=-1),
}


@pytest.mark.parametrize("damage", list(BAD_CONTENT))
def test_a_checkpoint_with_wrong_content_is_treated_as_damaged(copy_of_base, base, damage, capsys):
    newest = ckpt.checkpoint_path(copy_of_base, 4)
    arrays, meta = ckpt.load_arrays(newest)
    BAD_CONTENT[damage](arrays, meta)
    ckpt.save_arrays(newest, arrays, meta)  # a valid checksum over wrong content
    with pytest.raises(es.CheckpointError) as info:
        es.load_params(copy_of_base, 4)
    one_line(info, f"{newest} is not a valid checkpoint of this run")
    assert info.value.path == str(newest)
    np.testing.assert_array_equal(es.load_params(copy_of_base, "latest"), es.load_params(copy_of_base, 3))
    resumed = run(copy_of_base, generations=4, resume=True)
    assert "warning: skipping damaged checkpoint" in capsys.readouterr().err
    np.testing.assert_array_equal(resumed.centre, es.load_params(base, 4))
    assert rows(copy_of_base) == rows(base)


@pytest.mark.parametrize("bad", ["short", "nan", "float64"])
def test_a_best_npz_with_wrong_content_is_refused(copy_of_base, bad):
    best = copy_of_base / "best.npz"
    arrays, meta = ckpt.load_arrays(best)
    params = arrays["params"]
    arrays["params"] = {"short": params[:2], "nan": np.full_like(params, np.nan), "float64": params.astype(np.float64)}[bad]
    ckpt.save_arrays(best, arrays, meta)
    with pytest.raises(es.CheckpointError) as info:
        es.load_params(copy_of_base, "best")
    one_line(info, f"{best} is not a valid checkpoint of this run", "use which='latest'")


# -- 6. full disk, read-only folder, temp files of killed writers ---------------------------------

def test_full_disk_mid_run_keeps_saved_files_and_resumes(tmpfs, straight):
    run_dir = tmpfs / "r"
    at_fill = {}

    def fill_disk():
        at_fill.update(snapshot(run_dir))
        at_fill["ballast"] = fill(tmpfs)

    with pytest.raises(StorageError) as info:
        run(run_dir, problem=AtCall(NoisySphere(N), FIRST_CALL_OF_GEN[3] + 1, fill_disk))
    one_line(info, f"cannot write {run_dir}/", "No space left on device; free space and resume the run",
             f"--resume {run_dir}")
    ballast = at_fill.pop("ballast")
    now = snapshot(run_dir)
    assert now.pop("progress.csv").startswith(at_fill.pop("progress.csv"))  # at most a whole row more
    assert now == at_fill and not temps(run_dir)
    assert max(g for g, _ in ckpt.list_checkpoints(run_dir)) == 3
    es.load_params(run_dir, "best")
    ballast.unlink()  # free space
    assert_equals_straight(run(run_dir, resume=True), run_dir, straight)


def test_atomic_writes_on_a_full_disk_keep_the_old_files_and_no_temp(tmpfs):
    target = tmpfs / "config.json"
    ckpt.atomic_write_bytes(target, b"old")
    ckpt.save_arrays(tmpfs / "best.npz", {"params": np.zeros(N, np.float32)}, {"generation": 1})
    saved = snapshot(tmpfs)
    ballast = fill(tmpfs)
    with pytest.raises(OSError) as info:
        ckpt.atomic_write_bytes(target, b"new" * 100_000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    with pytest.raises(OSError):
        ckpt.save_arrays(tmpfs / "best.npz", {"params": np.ones(100_000, np.float32)}, {"generation": 2})
    ballast.unlink()
    assert snapshot(tmpfs) == saved and not temps(tmpfs)
    assert ckpt.load_arrays(tmpfs / "best.npz")[1] == {"generation": 1}


def test_a_failed_row_append_leaves_no_torn_row(tmpfs):
    progress = tmpfs / "progress.csv"
    progress.write_bytes(b"x" * (os.sysconf("SC_PAGE_SIZE") - 10))  # the row's first 10 bytes would still fit
    before = progress.read_bytes()
    ballast = fill(tmpfs)
    with pytest.raises(OSError) as info:
        run_folder.append_line(progress, "y" * 200 + "\n")
    assert info.value.errno == errno.ENOSPC
    ballast.unlink()
    assert progress.read_bytes() == before


def test_resume_drops_a_torn_last_row(copy_of_base, straight):
    with open(copy_of_base / "progress.csv", "a") as f:
        f.write("4,0.31,30,-12.")  # the row of generation 4, cut off before checkpoint 5 existed
    assert_equals_straight(run(copy_of_base, resume=True), copy_of_base, straight)


def test_read_only_folder_at_start_and_mid_run(bind, straight):
    point, set_readonly = bind
    run_dir = point / "r"
    with pytest.raises(StorageError) as info:
        run(run_dir, problem=AtCall(NoisySphere(N), FIRST_CALL_OF_GEN[2] + 1, lambda: set_readonly(True)))
    one_line(info, f"cannot write {run_dir}/", "Read-only file system; make it writable and resume the run")
    saved = snapshot(run_dir)
    assert max(g for g, _ in ckpt.list_checkpoints(run_dir)) == 2
    with pytest.raises(es.UsageError) as info:  # found at start: a usage error
        run(run_dir, resume=True)
    one_line(info, f"cannot write {run_dir}/{es_run.LOCK_NAME}: Read-only file system")
    with pytest.raises(es.UsageError) as info:
        run(point / "new")
    one_line(info, f"cannot write {point / 'new'}: Read-only file system", "start again")
    assert snapshot(run_dir) == saved
    set_readonly(False)
    assert_equals_straight(run(run_dir, resume=True), run_dir, straight)


def test_temp_files_of_a_killed_writer_are_removed_on_resume(tmp_path, straight):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run_dir = tmp_path / "r"
    done = subprocess.run([sys.executable, str(script), str(run_dir), "0", ".gen-000003.npz.tmp-"],
                          env=CHILD_ENV, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL
    assert temps(run_dir) == [f".gen-000003.npz.tmp-{_child_pid(run_dir)}"]
    live = run_dir / f".notes.tmp-{os.getpid()}"  # a live process's temp file is not ours to remove
    live.write_text("x")
    (run_dir / "notes.tmp-1").write_text("y")  # not the pattern
    assert_equals_straight(run(run_dir, resume=True), run_dir, straight)
    assert temps(run_dir) == [live.name] and (run_dir / "notes.tmp-1").exists()


def _child_pid(run_dir):
    return (Path(run_dir) / es_run.LOCK_NAME).read_text().strip()


# -- 7. NaN fitness ----------------------------------------------------------------------------------

def test_nan_fitness_at_generation_2_keeps_generation_1_resumable(tmp_path, straight):
    run_dir = tmp_path / "r"
    before = {}
    problem = NaNFromCall(NoisySphere(N), FIRST_CALL_OF_GEN[2], lambda: before.update(snapshot(run_dir)))
    with pytest.raises(es.EvaluationError) as info:
        run(run_dir, problem=problem)
    one_line(info, "member 0 of generation 2 has fitness nan")
    assert snapshot(run_dir) == before and len(rows(run_dir)) == 2
    assert max(g for g, _ in ckpt.list_checkpoints(run_dir)) == 2
    assert_equals_straight(run(run_dir, resume=True), run_dir, straight)
