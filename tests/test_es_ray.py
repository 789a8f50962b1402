"""RayEvaluator: same numbers as serial with 1 or 2 workers, light wire traffic, worker death."""
from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import es
from es import seeding
from es import evaluation
from es_problems import KillWorkerOnce, NoisySphere, NoRoom, Raises, TableProbe

pytestmark = pytest.mark.usefixtures("ray_session")

FITNESS_COLUMNS = ("generation", "env_steps", "fitness_mean", "fitness_max", "fitness_min", "fitness_std",
                   "sigma", "lr", "eval_mean", "eval_std")


def columns(run_dir):
    with open(run_dir / "progress.csv", newline="") as f:
        return [{k: r[k] for k in FITNESS_COLUMNS} for r in csv.DictReader(f)]


def run(evaluator, problem, run_dir, name):
    strategy = es.make_strategy(name, problem.num_params, 8, 0.3, **({"lr": 0.2} if name != "sep-cma" else {}))
    return es.evolve(problem, strategy, evaluator, run_dir, generations=4, episodes=2, seed=11,
                     eval_every=2, eval_episodes=3, progress="none")


def test_serial_ray1_ray2_give_identical_runs(tmp_path):
    problem = NoisySphere(6)
    for name in ("openai-es", "pgpe", "sep-cma"):
        run(es.SerialEvaluator(problem), problem, tmp_path / f"serial-{name}", name)
    with es.RayEvaluator(problem, num_workers=1) as one:
        run(one, problem, tmp_path / "ray1-openai-es", "openai-es")
    with es.RayEvaluator(problem, num_workers=2) as two:
        assert len(set(two.worker_pids())) == 2
        result = run(two, problem, tmp_path / "ray2-openai-es", "openai-es")
        run(two, problem, tmp_path / "ray2-pgpe", "pgpe")
        run(two, problem, tmp_path / "ray2-sep-cma", "sep-cma")
    assert columns(tmp_path / "serial-openai-es") == columns(tmp_path / "ray1-openai-es") == columns(tmp_path / "ray2-openai-es")
    assert columns(tmp_path / "serial-pgpe") == columns(tmp_path / "ray2-pgpe")
    assert columns(tmp_path / "serial-sep-cma") == columns(tmp_path / "ray2-sep-cma")
    np.testing.assert_array_equal(result.centre, es.load_params(tmp_path / "serial-openai-es", "latest"))


def test_only_offsets_and_seeds_cross_the_wire_per_member():
    n, popsize = 50_000, 8
    problem = NoisySphere(n)
    strategy = es.make_strategy("openai-es", n, popsize, 0.1, lr=0.1)
    state = strategy.init(np.zeros(n, np.float32), 0)
    pop = strategy.ask(state)
    seeds = [seeding.train_episode_seeds(0, 0, g, 2) for g in pop.groups]
    with es.RayEvaluator(problem, num_workers=2) as evaluator:
        ev = evaluator.evaluate(pop.shared, pop.members, seeds)
    shared_bytes = len(pickle.dumps(pop.shared, protocol=5))
    assert shared_bytes > 4 * n  # the centre goes out once ...
    per_member = (ev.bytes_sent - shared_bytes) / popsize
    assert 0 < per_member < 300  # ... and each member costs an offset, a sign and three object ids
    serial = es.SerialEvaluator(problem).evaluate(pop.shared, pop.members, seeds)
    np.testing.assert_array_equal(ev.fitness, serial.fitness)
    np.testing.assert_array_equal(ev.steps, serial.steps)
    assert ev.returns == serial.returns


@pytest.mark.parametrize("restarts", [3, 0], ids=["ray-restarts-actor", "evaluator-replaces-actor"])
def test_worker_killed_mid_generation_gives_clean_results(tmp_path, restarts):
    """Ray's own actor restart + task retry, and (restarts=0) the evaluator's resubmission to a fresh actor."""
    marker = tmp_path / "killed.pid"
    problem = KillWorkerOnce(NoisySphere(6), marker, delay=0.05)
    strategy = es.make_strategy("openai-es", 6, 8, 0.3, lr=0.2)
    pop = strategy.ask(strategy.init(problem.initial_params(0), 3))
    seeds = [seeding.train_episode_seeds(3, 0, g, 2) for g in pop.groups]
    clean = es.SerialEvaluator(NoisySphere(6)).evaluate(pop.shared, pop.members, seeds)
    with es.RayEvaluator(problem, num_workers=2, max_restarts=restarts, max_task_retries=restarts) as evaluator:
        ev = evaluator.evaluate(pop.shared, pop.members, seeds)
        alive = evaluator.worker_pids()
        assert (evaluator.resubmissions > 0) == (restarts == 0)
    killed = int(marker.read_text())  # a worker really died: its pid is gone and was replaced
    assert killed not in alive
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
    np.testing.assert_array_equal(ev.fitness, clean.fitness)
    assert ev.returns == clean.returns


def test_problem_exception_is_one_line_evaluation_error():
    problem = Raises(3)
    strategy = es.make_strategy("openai-es", 3, 2, 0.1)
    pop = strategy.ask(strategy.init(np.zeros(3, np.float32), 0))
    with es.RayEvaluator(problem, num_workers=1) as evaluator:
        with pytest.raises(es.EvaluationError, match="member 0: ValueError: boom") as info:
            evaluator.evaluate(pop.shared, pop.members, [[1], [1]])
    assert "\n" not in str(info.value)
    with pytest.raises(es.EvaluationError, match="member 0: ValueError: boom"):
        es.SerialEvaluator(problem).evaluate(pop.shared, pop.members, [[1], [1]])


def test_bad_worker_count_in_flight_and_unpicklable_problem():
    with pytest.raises(es.UsageError, match="num_workers"):
        es.RayEvaluator(NoisySphere(2), num_workers=0)
    with pytest.raises(es.UsageError, match="in_flight"):  # 0 would hand out no task, ever
        es.RayEvaluator(NoisySphere(2), num_workers=1, in_flight=0)
    problem = NoisySphere(2)
    problem.lock = threading.Lock()  # not picklable, even by cloudpickle
    with pytest.raises(es.UsageError, match="must be picklable"):
        es.RayEvaluator(problem, num_workers=1)


def test_noise_table_goes_to_the_object_store_once_and_workers_map_it(monkeypatch):
    n, popsize = 6, 8
    problem = TableProbe(n)
    strategy = es.make_strategy("openai-es", n, popsize, 0.3, lr=0.2)
    state = strategy.init(problem.initial_params(0), 17)
    with es.RayEvaluator(problem, num_workers=2) as evaluator:
        puts = []
        put_table = evaluator._put_table
        monkeypatch.setattr(evaluator, "_put_table", lambda table: (puts.append(table), put_table(table)))
        for g in range(3):
            pop = strategy.ask(state)
            ev = evaluator.evaluate(pop.shared, pop.members, [[g]] * popsize)
            state = strategy.tell(state, pop, np.arange(popsize, dtype=float))
            assert ev.bytes_sent < 2_000  # the centre, then integers: never the table
    assert puts == [strategy.noise_table(state)]  # once per run, not per generation
    assert evaluator.table_bytes == 4 * strategy.noise_table_size
    held = {(count, mapped) for count, mapped, _ in ev.returns}
    assert held == {(1.0, 1.0)}  # every worker holds one table, mapped from the object store
    assert len({pid for _, _, pid in ev.returns}) == 2


def test_a_node_without_room_for_the_table_is_one_line(monkeypatch):
    strategy = es.make_strategy("openai-es", 3, 2, 0.1)
    pop = strategy.ask(strategy.init(np.zeros(3, np.float32), 0))
    with es.RayEvaluator(NoRoom(3), num_workers=1) as evaluator:  # a worker's fetch fails
        with pytest.raises(es.ResourceError, match=r"^Ray node 10.0.0.7 cannot hold the noise table") as info:
            evaluator.evaluate(pop.shared, pop.members, [[1], [1]])
        assert "\n" not in str(info.value)

        def full(*args, **kwargs):
            raise ray.exceptions.ObjectStoreFullError("object store full; spilling failed")

        ray = evaluator._ray
        fresh = es.make_strategy("openai-es", 3, 2, 0.1)
        other = fresh.ask(fresh.init(np.zeros(3, np.float32), 1))  # another run: its table is put
        monkeypatch.setattr(ray, "put", full)
        with pytest.raises(es.ResourceError, match=r"cannot put the noise table \(4 MiB\) in Ray's object store "
                                                  r"\(object store full; spilling failed\); give the head node") as info:
            evaluator.evaluate(other.shared, other.members, [[1], [1]])
        assert "\n" not in str(info.value)
        monkeypatch.setattr(ray, "get", full)  # and a worker's fetch, as the worker runs it
        with pytest.raises(es.ResourceError, match=r"^Ray node \S+ cannot hold the noise table \(4 MiB\) in its "
                                                  r"object store \(object store full; spilling failed\); give every node"):
            evaluation.fetch_table(other.shared.table, None)


SIGTERM_CHILD = """
import os, signal, sys, time
sys.path.insert(0, {tests!r})
import es
from es_problems import NoisySphere

def stop(signum, frame):
    print("python handler", flush=True)
    sys.exit(7)

signal.signal(signal.SIGTERM, stop)
with es.RayEvaluator(NoisySphere(3), num_workers=1):  # starts a local Ray: ray.init
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
"""


def test_starting_ray_keeps_the_processs_sigterm_handler(tmp_path):
    """ray.init installs a C++ SIGTERM handler (a stack dump, then exit) over Python's; the
    evaluator puts the process's own back, so a command's handler (save, shut Ray down, one
    line) still runs. A real subprocess: the handler is per process."""
    script = tmp_path / "child.py"
    script.write_text(SIGTERM_CHILD.format(tests=str(Path(__file__).parent)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RAY_ADDRESS": ""})
    assert proc.returncode == 7 and "python handler" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
    assert "SIGTERM received" not in proc.stderr
