"""Where a job's work runs: cut into short tasks, trained here on threads or on a Dask cluster.

A *task* is a slice of one part of a job — some of a pair's configurations, or
a pair's runs — planned so that it trains in about ``SLICE_SECONDS``
(``seconds``, a cost model of the population engine).  Each task is a call of
a module-level function on plain values (``Task.fn(*Task.args)``), so a Dask
worker needs nothing but this package to run it, and returns the rows to save;
the caller saves them (``save``) as each task completes.  A cancel therefore
loses at most the tasks in flight: about ``SLICE_SECONDS`` of work each.

``run`` trains the tasks on ``workers`` threads of this process (torch
releases the GIL in its kernels), or on the workers of a
``dask.distributed`` cluster given by ``client``; progress counts optimizer
steps either way (on a cluster, a task's steps count when it completes).
Dask is imported only by ``cluster``: without a scheduler it is never loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from . import population as pop

SLICE_SECONDS = 10.0  # what a task should take here: the most work a cancel may lose
LOCAL = "local"       # a scheduler "address" that starts a LocalCluster of this machine

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
               budget: float = SLICE_SECONDS) -> int:
    """How many units (a configuration: one network per fold) fit one task of ``budget``
    seconds (``seconds``); at least one, however long one takes."""
    per_step = budget / max(1, steps) - STEP_SECONDS
    per_unit = networks_per_unit * (MEMBER_SECONDS + ROW_SECONDS * batch_size)
    return max(1, int(per_step // per_unit)) if per_step > 0 else 1


@dataclass(frozen=True)
class Task:
    """One slice of a job's part: ``fn(*args, progress=...)`` returns what ``part`` saves."""

    part: str
    cost: int                 # optimizer steps, summed over its networks
    fn: Callable[..., Any]    # module-level, so that a Dask worker can import it
    args: tuple


def execute(fn: Callable[..., Any], *args, progress: pop.Progress | None = None) -> Any:
    """Run a task's function as an entry point: one torch thread, no autograd state."""
    torch.set_num_threads(1)  # tiny models: the default of 2+ threads is many times slower
    with torch.no_grad():     # grad mode is per thread
        return fn(*args, progress=progress)


def run(tasks: list[Task], save: Callable[[Task, Any], None],
        progress: pop.Progress | None = None, workers: int = 1, client=None) -> None:
    """Train every task and ``save`` each result as it completes (in this thread on a
    cluster, in the task's thread here).  ``progress(done, total)`` sees optimizer steps;
    returning False cancels: ``population.Cancelled`` once the tasks in flight stop (here)
    or are dropped (on a cluster).  ``client``: a ``dask.distributed.Client``, else
    ``workers`` threads of this process."""
    if client is not None:
        return _run_on_cluster(tasks, save, progress, client)

    def job(task: Task) -> Callable[[pop.Progress], None]:
        def train(report: pop.Progress) -> None:
            # between tasks: a population's last epoch cannot stop, so a job of one-epoch
            # tasks stops here
            if report(0, task.cost) is False:
                raise pop.Cancelled()
            save(task, execute(task.fn, *task.args, progress=report))
        return train
    pop.run_parallel([job(t) for t in tasks], [t.cost for t in tasks], progress, workers)


POLL_SECONDS = 0.2  # how often a cluster run looks for results and for a cancel


def _run_on_cluster(tasks: list[Task], save, progress, client) -> None:
    from dask.distributed import as_completed

    total = sum(t.cost for t in tasks)
    # the costliest first, as on threads, so that the last tasks to finish are short ones
    order = sorted(tasks, key=lambda t: -t.cost)
    futures = {client.submit(execute, t.fn, *t.args, pure=False): t for t in order}
    pending = as_completed(futures)
    done = 0
    try:
        while not pending.is_empty():
            for future in pending.next_batch(block=False) if pending.has_ready() else []:
                task = futures[future]
                try:
                    result = future.result()  # a task's error is raised here, with its trace
                except Exception:
                    if progress is not None and progress(done, total) is False:
                        raise pop.Cancelled() from None  # e.g. Ctrl-C stopped local workers
                    raise
                save(task, result)
                done += task.cost
            if progress is not None and progress(done, total) is False:
                raise pop.Cancelled()
            if not pending.has_ready():
                time.sleep(POLL_SECONDS)
    finally:
        client.cancel([f for f in futures if not f.done()])
    if progress is not None:
        progress(total, total)


@contextmanager
def cluster(scheduler: str | None, workers: int = 1) -> Iterator[Any]:
    """A ``dask.distributed.Client`` of the cluster at ``scheduler`` (``tcp://host:8786``),
    or of a new ``LocalCluster`` of ``workers`` processes (one thread each) for ``"local"``;
    None without a scheduler (nothing imported)."""
    if not scheduler:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise RuntimeError("a Dask scheduler needs the cluster extra: "
                           "pip install 'minidl[cluster]'") from None
    if scheduler == LOCAL:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as local, Client(local) as client:
            yield client
    else:
        with Client(scheduler, timeout="10s") as client:
            yield client

