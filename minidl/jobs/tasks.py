"""Where a job's work runs: cut into tasks, trained here on threads or on a Dask cluster.

A *task* is a slice of one part of a job — some of a pair's configurations, or
a pair's runs — planned so that it trains in about ``POPULATION_SECONDS``
(``seconds``, a cost model of the population engine) as one population.  Each
task is a call of a module-level function on plain values (``Task.fn(*Task.args)``),
so a Dask worker needs nothing but this package to run it, and returns the rows
to save; the caller saves them (``save``) as each task completes.

A task trains for at most about ``SLICE_SECONDS`` at a time: then (at an epoch
boundary) it *pauses* and returns a ``Continue`` holding its population's
checkpoint (``engine.fit.Paused``), which is kept (``Checkpoints``) and trained on
by the task's next call.  A cancel therefore loses at most ~``SLICE_SECONDS`` of
work per task in flight (in this process, nothing but the epoch in flight: a
cancelled population keeps its checkpoint too), while populations stay as large
as a fast sweep wants.  A rerun resumes a task from its checkpoint.

``run`` is the one way work runs: through a ``concurrent.futures`` executor —
``workers`` threads of this process (torch releases the GIL in its kernels), or
Dask's executor on the workers of a ``dask.distributed`` cluster (``pool``), with
one retry for a task whose worker died.  Progress counts optimizer steps either
way (in this process after every epoch, on a cluster as each slice returns).
Dask is imported only by ``pool`` with a scheduler: without one it is never loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

from .. import runtime
from ..engine import fit as pop

SLICE_SECONDS = 10.0       # how long a task trains before it saves a checkpoint: what a cancel
                           # may lose
POPULATION_SECONDS = 60.0  # what one task (one population) should take in all
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)  # threads an in-memory search trains on
LOCAL = "local"            # a scheduler "address" that starts a LocalCluster of this machine

# The population engine's cost, measured on this project's 2-core machine (one thread,
# the report's 2-25-25-25-2 net, 800 training rows): an optimizer step of a population of
# M members at batch size b took about STEP + M·(MEMBER + ROW·b) seconds, evaluation and
# set-up included (0.23 ms at M=5, b=1; 1.4 ms at M=250, b=1; 6.0 ms at M=250, b=20).
STEP_SECONDS = 2.0e-4
MEMBER_SECONDS = 3.7e-6
ROW_SECONDS = 1.0e-6


def seconds(members: int, steps: int, batch_size: int) -> float:
    """About how long ``members`` networks of one population take for ``steps`` steps each."""
    return steps * (STEP_SECONDS + members * (MEMBER_SECONDS + ROW_SECONDS * batch_size))


def slice_size(networks_per_unit: int, steps: int, batch_size: int,
               budget: float = POPULATION_SECONDS) -> int:
    """How many units (a configuration: one network per fold) fit one task of ``budget``
    seconds (``seconds``); at least one, however long one takes."""
    per_step = budget / max(1, steps) - STEP_SECONDS
    per_unit = networks_per_unit * (MEMBER_SECONDS + ROW_SECONDS * batch_size)
    return max(1, int(per_step // per_unit)) if per_step > 0 else 1


@dataclass(frozen=True)
class Task:
    """One slice of a job's part: ``fn(*args, progress=..., resume=..., pause_after=...)``
    returns what ``part`` saves.  ``cost``: the optimizer steps it still has to train;
    ``resume``: a checkpoint to go on from (``Continue.state``), None to start."""

    part: str
    cost: int                 # optimizer steps, summed over its networks
    fn: Callable[..., Any]    # module-level, so that a Dask worker can import it
    args: tuple
    resume: dict | None = None
    done: int = 0             # steps its checkpoint had trained when this run started
    units: int = 1            # the part's units it trains (configurations, runs)

    @property
    def key(self) -> str:
        """Names its checkpoint: the same for the same function and arguments."""
        text = json.dumps([self.fn.__module__, self.fn.__qualname__, self.args],
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Continue:
    """What a call that paused returns: its checkpoint and the steps it trained."""

    state: dict
    done: int


# ---------------------------------------------------------------- running tasks

def execute(fn: Callable[..., Any], *args, progress: pop.Progress | None = None,
            resume: dict | None = None, pause_after: float | None = None,
            entry: bool = False) -> Any:
    """Run a task's function: its result, or a ``Continue`` if it paused after
    ``pause_after`` seconds.  ``entry``: this call is its process's entry point (a Dask
    worker's), which then takes minidl's process settings (``runtime.setup``)."""
    if entry:
        runtime.setup()
    if progress is not None and progress(0, 0) is False:  # cancelled before it started
        raise pop.Cancelled()
    with torch.no_grad():     # grad mode is per thread
        try:
            return fn(*args, progress=progress, resume=resume, pause_after=pause_after)
        except pop.Paused as paused:
            return Continue(paused.state, paused.done)


class Checkpoints(Protocol):
    """Where a run keeps its tasks' checkpoints (a job's store)."""

    def save(self, task: Task, state: dict, trained: int) -> None:
        """Keep ``task``'s state once this run has trained ``trained`` of its steps (past its
        ``done``)."""

    def drop(self, task: Task) -> None:
        """Forget ``task``'s checkpoint (it finished)."""


@dataclass
class Pool:
    """Where tasks run: a ``concurrent.futures`` executor, and whether it is this process's
    (its tasks then report progress after every epoch and stop at a cancel)."""

    executor: Executor
    local: bool


@contextmanager
def pool(scheduler: str | None = None, workers: int = 1) -> Iterator[Pool]:
    """``workers`` threads of this process; or, given a scheduler, Dask's executor on the
    cluster at ``scheduler`` (``tcp://host:8786``) or on a new ``LocalCluster`` of
    ``workers`` processes (one thread each) for ``"local"``."""
    if not scheduler:
        with ThreadPoolExecutor(max_workers=max(1, workers),
                                thread_name_prefix="minidl-task") as executor:
            yield Pool(executor, local=True)
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("a Dask scheduler needs the cluster extra: "
                           "pip install 'minidl[cluster]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler == LOCAL:
            local = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None))
            client = stack.enter_context(Client(local))
        else:
            client = stack.enter_context(Client(scheduler, timeout="10s"))
        yield Pool(client.get_executor(retries=1, pure=False), local=False)


def run(tasks: list[Task], save: Callable[[Task, Any], None], where: Pool,
        progress: pop.Progress | None = None, checkpoints: Checkpoints | None = None,
        stop: Future | None = None) -> None:
    """Train every task on ``where`` and ``save`` each result as it completes (in this
    thread).  ``progress(done, total)`` sees optimizer steps; it returning False, or
    ``stop`` completing, cancels: ``engine.fit.Cancelled`` once the tasks in flight have
    stopped at their next epoch (here: each keeps its checkpoint) or are dropped (on a
    cluster).  With ``checkpoints``, tasks pause every ``SLICE_SECONDS`` and their
    checkpoints are kept there until they finish.  A task's error stops the others too
    and is raised here."""
    pause = None if checkpoints is None else SLICE_SECONDS
    total = sum(t.cost for t in tasks)
    lock = threading.Lock()
    trained: dict[int, int] = {}   # steps each task's chain has trained in this run
    chain: dict[int, int] = {}     # … before its current call (its earlier slices)
    cancelled = threading.Event()

    def report() -> bool:
        with lock:
            done = sum(trained.values())
        if progress is not None and progress(done, total) is False:
            cancelled.set()
        return not cancelled.is_set()

    def reporter(n: int) -> pop.Progress:
        def task_progress(done: int, _: int) -> bool:
            with lock:
                trained[n] = chain[n] + done
            return report() and not (stop is not None and stop.done())
        return task_progress

    def submit(n: int, task: Task) -> Future:
        kwargs = {"resume": task.resume, "pause_after": pause}
        if where.local:
            kwargs["progress"] = reporter(n)
        else:
            kwargs["entry"] = True
        return where.executor.submit(execute, task.fn, *task.args, **kwargs)

    # the costliest first, so that the last tasks to finish are short ones
    order = sorted(range(len(tasks)), key=lambda n: -tasks[n].cost)
    pending: dict[Future, tuple[int, Task]] = {}
    for n in order:
        trained[n] = chain[n] = 0
        pending[submit(n, tasks[n])] = (n, tasks[n])
    error: BaseException | None = None
    finished_tasks: set[int] = set()
    waiting = set(pending) | ({stop} if stop is not None else set())
    try:
        while pending:
            finished, _ = wait(waiting, return_when=FIRST_COMPLETED)
            if stop is not None and stop in finished:
                cancelled.set()
                waiting.discard(stop)
            for future in finished & set(pending):
                n, task = pending.pop(future)
                waiting.discard(future)
                try:
                    result = future.result()
                except (pop.Cancelled, CancelledError) as stopped:
                    state = getattr(stopped, "state", None)
                    if checkpoints is not None and state is not None:  # all but this epoch
                        checkpoints.save(tasks[n], state, chain[n] + stopped.done)
                    cancelled.set()
                    continue
                except Exception as failure:  # the task's error, with its trace
                    error = error or failure
                    cancelled.set()
                    continue
                if isinstance(result, Continue):  # it paused: keep its checkpoint, go on
                    with lock:
                        chain[n] += result.done
                        trained[n] = chain[n]
                    checkpoints.save(tasks[n], result.state, chain[n])
                    task = replace(task, cost=task.cost - result.done, resume=result.state,
                                   done=task.done + result.done)
                    if report() and not cancelled.is_set():
                        later = submit(n, task)
                        pending[later] = (n, task)
                        waiting.add(later)
                    continue
                save(task, result)
                finished_tasks.add(n)
                if checkpoints is not None:
                    checkpoints.drop(task)
                with lock:
                    trained[n] = chain[n] = tasks[n].cost
                report()
            if cancelled.is_set():  # what has not started never will (nor, on a cluster,
                for future in list(pending):  # what runs there: its tasks cannot listen)
                    if future.cancel():
                        del pending[future]
                        waiting.discard(future)
    finally:
        for future in pending:
            future.cancel()
    if error is not None:
        raise error
    if cancelled.is_set() and len(finished_tasks) < len(tasks):
        raise pop.Cancelled()
    if progress is not None:
        progress(total, total)


