"""Evaluators: score a population, serially in-process or on Ray actors.

Both evaluators have the same face:

    ev = evaluator.evaluate(shared, members, seeds)
        shared:  Population.shared (SearchPoint or None), sent once per call
        members: sequence of P member descriptors (Perturbation / Explicit)
        seeds:   sequence of P lists of env seeds, one seed per episode
    -> Evaluation(fitness float64 (P,), steps int64 (P,), returns list of P tuples,
                  bytes_sent int)

Results are placed by member index, never by arrival order, and every evaluation is a pure
function of (shared, member, seeds): so serial, 1 Ray worker and N Ray workers give the
same numbers, and a retried evaluation gives the number the first try would have.

RayEvaluator:
  * no address and no RAY_ADDRESS: starts Ray in this process (`ray.init(num_cpus=...)`)
    and shuts it down in `close()`; an already running Ray (e.g. a test fixture) is reused.
  * address="auto" (or RAY_ADDRESS set, as inside a Ray job) joins the cluster.
  * one actor per CPU (`num_cpus=1`), single-threaded (OMP/MKL/OpenBLAS/Numba thread
    counts set to 1 through runtime_env env_vars, torch.set_num_threads(1)); the problem
    is `ray.put` once and each actor fetches it once, on its first task.
  * the noise table (`shared.table`, OpenAI-ES and PGPE) is `ray.put` once per run, when
    it first appears; each actor maps it (`ray.get`: read-only, zero-copy, one copy per
    node in Ray's object store) on its first task and keeps it. A node without room for it
    stops the run with a one-line ResourceError saying what to change.
  * per generation `shared` (centre, sigma and the table's name) is `ray.put` once; per
    member only (member, seeds) go out, a member being (offset, sign) or the centre, and
    (fitness, steps, returns) come back. `bytes_sent` counts the pickled size of what went
    out (shared once + each task's arguments, retries included); `setup_bytes` the problem,
    `table_bytes` the noise table put in the object store (once per run, 0 without one).
  * fault tolerance: actors restart (`max_restarts`) and Ray retries their tasks
    (`max_task_retries`); if an actor is gone for good, the task is resubmitted to a fresh
    actor. Exceptions raised by the problem itself are not retried (they would repeat)
    and surface as EvaluationError.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import threading
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from . import noise_table
from .errors import EvaluationError, ResourceError, UsageError, first_line
from .noise_table import NoiseTable
from .population import Member, SearchPoint, materialize

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
}


@dataclass
class Evaluation:
    """fitness float64 (P,), steps int64 (P,) env steps per member, returns: P tuples of
    per-episode returns, bytes_sent: bytes shipped to workers for this call (0 when serial)."""

    fitness: np.ndarray
    steps: np.ndarray
    returns: list[tuple[float, ...]]
    bytes_sent: int = 0


class Evaluator(Protocol):
    """What `evolve` needs from an evaluator (SerialEvaluator, RayEvaluator, or your own)."""

    num_workers: int

    def evaluate(self, shared: SearchPoint | None, members: Sequence[Member], seeds: Sequence[Sequence[int]]) -> Evaluation: ...
    def describe(self) -> dict: ...  # JSON-able settings for config.json
    def close(self) -> None: ...


def evaluate_member(problem: Any, shared: SearchPoint | None, member: Member, seeds: Sequence[int]) -> tuple[float, int, tuple[float, ...]]:
    """Build the member's parameters and run `problem.evaluate`; returns (fitness, steps, returns)."""
    fitness, steps, returns = problem.evaluate(materialize(shared, member), list(seeds))
    return float(fitness), int(steps), tuple(float(r) for r in returns)


def _collect(results: list) -> Evaluation:
    fitness = np.array([r[0] for r in results], np.float64)
    steps = np.array([r[1] for r in results], np.int64)
    return Evaluation(fitness, steps, [r[2] for r in results])


def _check_request(members: Sequence[Member], seeds: Sequence[Sequence[int]]) -> None:
    if len(members) != len(seeds):
        raise UsageError(f"evaluate needs one seed list per member: {len(members)} members, {len(seeds)} seed lists")


class SerialEvaluator:
    """Evaluates members one after another in this process (debugging, tests, tiny runs)."""

    num_workers = 1

    def __init__(self, problem: Any):
        self.problem = problem
        self.setup_bytes = 0

    def evaluate(self, shared: SearchPoint | None, members: Sequence[Member], seeds: Sequence[Sequence[int]]) -> Evaluation:
        _check_request(members, seeds)
        results = []
        for i, (member, member_seeds) in enumerate(zip(members, seeds)):
            try:
                results.append(evaluate_member(self.problem, shared, member, member_seeds))
            except Exception as e:
                raise EvaluationError(f"problem.evaluate failed for member {i}: {type(e).__name__}: {e}") from e
        return _collect(results)

    def describe(self) -> dict:
        return {"name": "serial", "num_workers": 1}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Worker:
    """Ray actor body: fetches the problem once, then evaluates (shared, member, seeds) tasks.

    The problem and the noise table arrive as ObjectRefs wrapped in lists (so Ray does not
    resolve them per call) and are fetched on the first task that needs them, then kept.
    Taking them in the constructor instead would tie actor restarts to constructor
    arguments in the object store, which Ray warns about; this way a restarted actor
    simply fetches them again.
    """

    def __init__(self):
        try:  # env vars cover BLAS and Numba; torch keeps its own pool
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        self.problem = None

    def evaluate(self, problem_box, table_box, shared, member, seeds):
        if self.problem is None:
            import ray

            self.problem = ray.get(problem_box[0])
        if table_box is not None and not noise_table.is_loaded(shared.table):
            noise_table.adopt(shared.table, fetch_table(shared.table, table_box[0]))
        return evaluate_member(self.problem, shared, member, seeds)

    def pid(self) -> int:
        return os.getpid()


def fetch_table(table: NoiseTable, ref: Any) -> np.ndarray:
    """The values of `table` from Ray's object store, in a worker: a read-only zero-copy view
    of this node's copy (Ray copies it to the node first). ResourceError, one line, when the
    node has no room for it."""
    import ray

    try:
        return ray.get(ref)
    except Exception as e:  # object store and spill disk full, node out of memory, object lost
        node = ray.util.get_node_ip_address()
        raise ResourceError(f"Ray node {node} cannot hold the noise table ({noise_table.mib(table.nbytes)}) in its "
                            f"object store ({first_line(e)}); give every node at least that much object store "
                            "memory (ray start --object-store-memory BYTES) and spill space, or set a smaller "
                            "noise_table_size") from None


def _hand_out(load: Sequence[int], queued: int, in_flight: int) -> list[int]:
    """The actors the next queued tasks go to, in order; ``load`` counts each actor's tasks
    sent and not yet returned, ``queued`` the tasks not yet sent.

    Every idle actor gets one. A task waits behind a running one (up to ``in_flight`` per
    actor, which hides the round trip between two tasks) only while at least as many
    tasks are queued as there are actors: near the end of a generation the last tasks
    go to whichever actor frees first, rather than queueing behind a slow episode while
    another actor idles (up to a whole episode lost per generation; with few members per
    worker, as on a large cluster, that is a large share of it).
    """
    load = list(load)
    chosen: list[int] = []
    for depth in range(in_flight):
        for a, tasks in enumerate(load):
            if queued == 0 or (depth > 0 and queued < len(load)):
                return chosen
            if tasks == depth:
                chosen.append(a)
                load[a] += 1
                queued -= 1
    return chosen


class RayEvaluator:
    """Evaluates members on Ray actors, one per CPU; see the module docstring.

    Args:
        problem: the picklable problem, shipped once to every actor.
        num_workers: actors to start; None = every CPU of the cluster. When Ray is started
            here, it is started with this many CPUs.
        address: None (local in-process Ray unless RAY_ADDRESS is set) or "auto" / "ray://..."
            to join a cluster.
        max_restarts, max_task_retries: Ray's per-actor restart and task-retry budgets.
        max_resubmits: how often one member may be resubmitted after its actor died for good.
        in_flight: tasks sent ahead per actor at most (2 hides the round trip between tasks;
            near the end of a generation fewer, see _hand_out).
    """

    def __init__(self, problem: Any, num_workers: int | None = None, address: str | None = None, *,
                 max_restarts: int = 3, max_task_retries: int = 3, max_resubmits: int = 3, in_flight: int = 2,
                 include_dashboard: bool | None = None):
        import ray

        if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers <= 0):
            raise UsageError(f"num_workers must be a positive integer, got {num_workers!r}")
        if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight <= 0:
            raise UsageError(f"in_flight must be a positive integer, got {in_flight!r}")
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            if address is None and not os.environ.get("RAY_ADDRESS"):
                cpus = os.cpu_count() or 1
                if num_workers and num_workers > cpus:
                    # A local Ray would start them all as processes on these CPUs, each waiting
                    # for a share of them: the first generation would never finish.
                    raise UsageError(f"{num_workers} workers asked for, but this machine has {cpus} CPUs; a local "
                                     f"Ray runs one worker per CPU: ask for at most {cpus}, or join a cluster "
                                     "with --ray-address")
                # The in-process Ray of a local run needs no dashboard. Ray turns token
                # authentication on for it, as it should, and advises at every start how to
                # turn it off: advice a local run does not need, so that one line is muted.
                kwargs = {"num_cpus": num_workers} if num_workers else {}
                kwargs["include_dashboard"] = bool(include_dashboard)
                auth_logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
                auth_logger.addFilter(_mute_auth_advice)
                try:
                    with _sigterm_kept():
                        ray.init(**kwargs)
                finally:
                    auth_logger.removeFilter(_mute_auth_advice)
            else:
                where = address or os.environ.get("RAY_ADDRESS")
                _check_reachable(where)
                try:
                    with _sigterm_kept():
                        ray.init(address=address)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    where = address or os.environ.get("RAY_ADDRESS")
                    raise UsageError(f"cannot join the Ray cluster at {where!r} ({_one_line(e)}); "
                                     "start one with `ray start --head` or leave the address out for a local Ray") from None
            self._owns_ray = True
        self.actors = []
        try:
            self._start_actors(problem, num_workers, address, max_restarts, max_task_retries, max_resubmits, in_flight)
        except BaseException:
            self.close()  # do not leave a Ray we started (or half the actors) behind
            raise

    def _start_actors(self, problem, num_workers, address, max_restarts, max_task_retries, max_resubmits, in_flight):
        ray = self._ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.num_workers = int(num_workers or max(1, cpus))
        if self.num_workers > cpus:  # not an error: an autoscaling cluster may still grow
            warnings.warn(f"{self.num_workers} workers asked for but the Ray cluster has {cpus} CPUs now; "
                          "extra actors wait until CPUs appear", stacklevel=2)
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.max_resubmits, self.in_flight = max_resubmits, in_flight
        self._actor_cls = ray.remote(_Worker).options(
            num_cpus=1, max_restarts=max_restarts, max_task_retries=max_task_retries,
            runtime_env={"env_vars": dict(SINGLE_THREAD_ENV)},
            # Spread the actors over the cluster's nodes rather than packing the first one.
            scheduling_strategy="SPREAD",
        )
        try:
            self.setup_bytes = len(ray.cloudpickle.dumps(problem))  # what Ray itself will use
        except Exception as e:
            raise UsageError(f"the problem must be picklable to go to Ray workers: {type(e).__name__}: {e}") from None
        self._problem_ref = ray.put(problem)
        self._problem_box = [self._problem_ref]
        self._table: NoiseTable | None = None  # the noise table in the object store, and its box
        self._table_box: list | None = None
        self.table_bytes = 0
        self.actors = [self._actor_cls.remote() for _ in range(self.num_workers)]
        self.resubmissions = 0  # members resubmitted after an actor died for good (for tests / logs)

    def worker_pids(self) -> list[int]:
        """Process ids of the actors (the fault-tolerance test kills one; benchmarks read their CPU time)."""
        return self._ray.get([a.pid.remote() for a in self.actors])

    def evaluate(self, shared: SearchPoint | None, members: Sequence[Member], seeds: Sequence[Sequence[int]]) -> Evaluation:
        ray = self._ray
        _check_request(members, seeds)
        table = getattr(shared, "table", None)
        if table is not None and table != self._table:
            self._put_table(table)
        table_box = self._table_box if table is not None else None
        shared_ref = ray.put(shared)
        bytes_sent = len(pickle.dumps(shared, protocol=5))
        # per task: the member, its seeds, and the ids of the problem, shared (and table) objects
        ref_bytes = (2 + (table is not None)) * len(shared_ref.binary())
        task_bytes = [len(pickle.dumps((m, list(s)), protocol=5)) + ref_bytes for m, s in zip(members, seeds)]
        results: list = [None] * len(members)
        attempts = [0] * len(members)
        queue = deque(range(len(members)))
        pending: dict[Any, tuple[int, int]] = {}  # ref -> (member index, actor index)
        load = [0] * len(self.actors)
        while queue or pending:
            for a in _hand_out(load, len(queue), self.in_flight):
                i = queue.popleft()
                ref = self.actors[a].evaluate.remote(self._problem_box, table_box, shared_ref, members[i],
                                                     list(seeds[i]))
                pending[ref] = (i, a)
                load[a] += 1
                bytes_sent += task_bytes[i]
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, a = pending.pop(ref)
                load[a] -= 1
                try:
                    results[i] = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the problem raised: a retry would raise again
                    for other in pending:  # do not leave workers busy with a generation nobody will read
                        try:
                            ray.cancel(other)
                        except Exception:  # best effort: a running sync actor task cannot be interrupted
                            pass
                    if isinstance(e.cause, ResourceError):  # a node without room for the noise table
                        raise ResourceError(str(e.cause)) from None
                    raise EvaluationError(f"problem.evaluate failed for member {i}: {_one_line(e)}") from e
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as e:
                    attempts[i] += 1
                    if attempts[i] > self.max_resubmits:
                        raise EvaluationError(f"member {i} failed {attempts[i]} times, workers keep dying: {_one_line(e)}") from e
                    self._replace_actor(a)
                    self.resubmissions += 1
                    queue.appendleft(i)
        ev = _collect(results)
        ev.bytes_sent = bytes_sent
        return ev

    def _put_table(self, table: NoiseTable) -> None:
        """Put the values of `table` in the object store (once per run; the previous table is released)."""
        values = noise_table.load(table)  # the driver's copy, which the strategy's update reads too
        self._table = self._table_box = None
        try:
            ref = self._ray.put(values)
        except Exception as e:  # object store and spill disk full
            raise ResourceError(f"cannot put the noise table ({noise_table.mib(table.nbytes)}) in Ray's object store "
                                f"({first_line(e)}); give the head node more object store memory (ray start "
                                "--object-store-memory BYTES) and spill space, or set a smaller noise_table_size") from None
        self._table, self._table_box, self.table_bytes = table, [ref], values.nbytes

    def _replace_actor(self, a: int) -> None:
        """Swap actor `a` for a fresh one if it is dead (Ray already restarted it otherwise)."""
        ray = self._ray
        try:
            ray.get(self.actors[a].pid.remote(), timeout=30)
        except Exception:
            try:
                ray.kill(self.actors[a], no_restart=True)
            except Exception:
                pass
            self.actors[a] = self._actor_cls.remote()

    def describe(self) -> dict:
        return {"name": "ray", "num_workers": self.num_workers, "address": self.address}

    def close(self) -> None:
        """Kill the actors, and shut Ray down if this evaluator started it."""
        ray = self._ray
        for actor in getattr(self, "actors", []):
            try:
                ray.kill(actor, no_restart=True)
            except Exception:
                pass
        self.actors = []
        self._table = self._table_box = None  # lets Ray free the noise table
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextlib.contextmanager
def _sigterm_kept():
    """Keep this process's answer to SIGTERM through ``ray.init``.

    The driver's Ray installs a C++ SIGTERM handler that prints a stack dump and exits,
    bypassing Python: a run stopped with ``kill`` read as a crash, and the command's own
    handler (hebbian.cli.sigterm_as_interrupt: save, shut Ray down, one line) never ran.
    Python still holds the handler it knew before; setting it again puts it back in place.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None:  # None: set outside Python, nothing of ours to put back
            signal.signal(signal.SIGTERM, handler)


def _mute_auth_advice(record: logging.LogRecord) -> bool:
    """Logging filter: drop Ray's "token authentication is enabled ... to opt out" advice."""
    return "to opt out" not in record.getMessage()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """UsageError within `timeout` seconds when a host:port cluster address does not answer.

    ray.init would retry an unreachable address for minutes; "auto" (the local cluster's
    address file) and names without a port are left to Ray, which fails fast on them.
    """
    target = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UsageError(f"cannot reach the Ray cluster at {address!r} ({e.strerror or type(e).__name__} within "
                         f"{timeout:g} s); check the address and that `ray start --head` runs there, or leave "
                         "the address out for a local Ray") from None


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
