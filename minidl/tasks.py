"""Where a job's work runs: cut into tasks, trained here on threads or on a Dask cluster.

A *task* is a slice of one part of a job — some of a pair's configurations, or
a pair's runs — planned so that it trains in about ``POPULATION_SECONDS``
(``seconds``, a cost model of the population engine) as one population.  Each
task is a call of a module-level function on plain values (``Task.fn(*Task.args)``),
so a Dask worker needs nothing but this package to run it, and returns the rows
to save; the caller saves them (``save``) as each task completes.

A task trains for at most about ``SLICE_SECONDS`` at a time: then (at an epoch
boundary) it *pauses* and returns a ``Continue`` holding its population's
checkpoint (``population.Paused``), which is saved in the job's folder
(``checkpoints/``) and trained on by the task's next call.  A cancel therefore
loses at most ~``SLICE_SECONDS`` of work per task in flight (on threads, nothing
but the epoch in flight: a cancelled population saves its checkpoint too), while
populations stay as large as a fast sweep wants.  A rerun resumes a task from its
checkpoint; a checkpoint that cannot be read is ignored (its task starts over).

``run`` trains the tasks on ``workers`` threads of this process (torch
releases the GIL in its kernels), or on the workers of a
``dask.distributed`` cluster given by ``client``; progress counts optimizer
steps either way (on a cluster, a call's steps count when it returns).
Dask is imported only by ``cluster``: without a scheduler it is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import population as pop

SLICE_SECONDS = 10.0       # how long a task trains before it saves a checkpoint: what a cancel
                           # may lose
POPULATION_SECONDS = 60.0  # what one task (one population) should take in all
LOCAL = "local"            # a scheduler "address" that starts a LocalCluster of this machine
CHECKPOINTS = "checkpoints"  # the subfolder of a job's folder that holds its tasks' checkpoints

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


def execute(fn: Callable[..., Any], *args, progress: pop.Progress | None = None,
            resume: dict | None = None, pause_after: float | None = None) -> Any:
    """Run a task's function as an entry point (one torch thread, no autograd state):
    its result, or a ``Continue`` if it paused after ``pause_after`` seconds."""
    torch.set_num_threads(1)  # tiny models: the default of 2+ threads is many times slower
    with torch.no_grad():     # grad mode is per thread
        try:
            return fn(*args, progress=progress, resume=resume, pause_after=pause_after)
        except pop.Paused as paused:
            return Continue(paused.state, paused.done)


# ---------------------------------------------------------------- checkpoints on disk

def _checkpoint_path(folder: Path, task: Task) -> Path:
    return folder / CHECKPOINTS / f"{task.part}.{task.key}.pt"


def save_checkpoint(folder: Path, task: Task, state: dict, trained: int) -> None:
    """Keep ``task``'s checkpoint (its state once this run has trained ``trained`` of its
    steps) in ``folder``, replacing the last one (written whole, then renamed: never half a
    file)."""
    path = _checkpoint_path(folder, task)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"part": task.part, "args": json.loads(json.dumps(task.args, default=str)),
                "done": task.done + trained, "cost": task.done + task.cost, "state": state}, tmp)
    tmp.replace(path)


def drop_checkpoint(folder: Path, task: Task) -> None:
    _checkpoint_path(folder, task).unlink(missing_ok=True)


def checkpoints(folder: Path, part: str) -> list[dict]:
    """``part``'s saved checkpoints: each ``{"args", "done", "cost", "state", "path"}``
    (``done`` of ``cost`` steps trained).  One that cannot be read is left out."""
    out = []
    for path in sorted((Path(folder) / CHECKPOINTS).glob(f"{part}.*.pt")):
        try:
            saved = torch.load(path, weights_only=True, mmap=True)  # tensors read when used
            if not (isinstance(saved, dict) and saved.get("part") == part
                    and isinstance(saved.get("done"), int) and isinstance(saved.get("cost"), int)
                    and isinstance(saved.get("state"), dict)):
                continue
        except Exception:  # a damaged file: its task starts over
            continue
        out.append({**saved, "path": path})
    return out


def resumed(folder: Path, todo: list[Task]) -> list[Task]:
    """``todo`` with each task that has a checkpoint in ``folder`` set to go on from it (its
    ``cost`` what is left)."""
    held = {c["path"].name: c for c in checkpoints(folder, todo[0].part)} if todo else {}
    out = []
    for task in todo:
        saved = held.get(_checkpoint_path(folder, task).name)
        out.append(task if saved is None else replace(
            task, cost=max(0, task.cost - saved["done"]), resume=saved["state"],
            done=saved["done"]))
    return out


def run(tasks: list[Task], save: Callable[[Task, Any], None],
        progress: pop.Progress | None = None, workers: int = 1, client=None,
        folder: Path | None = None) -> None:
    """Train every task and ``save`` each result as it completes (in this thread on a
    cluster, in the task's thread here).  ``progress(done, total)`` sees optimizer steps;
    returning False cancels: ``population.Cancelled`` once the tasks in flight stop (here)
    or are dropped (on a cluster).  ``client``: a ``dask.distributed.Client``, else
    ``workers`` threads of this process.  With a ``folder``, tasks pause every
    ``SLICE_SECONDS`` and their checkpoints are kept there until they finish."""
    pause = None if folder is None else SLICE_SECONDS

    def keep(task: Task, result: Any) -> None:
        save(task, result)
        if folder is not None:
            drop_checkpoint(folder, task)

    if client is not None:
        return _run_on_cluster(tasks, keep, progress, client, folder)

    def job(task: Task) -> Callable[[pop.Progress], None]:
        def train(report: pop.Progress) -> None:
            # between tasks: a population's last epoch cannot stop, so a job of one-epoch
            # tasks stops here
            if report(0, task.cost) is False:
                raise pop.Cancelled()
            offset, resume = 0, task.resume

            def scaled(done: int, _: int) -> bool | None:
                return report(offset + done, task.cost)
            while True:
                try:
                    result = execute(task.fn, *task.args, progress=scaled, resume=resume,
                                     pause_after=pause)
                except pop.Cancelled as cancel:  # keep what it trained: all but this epoch
                    if folder is not None and cancel.state is not None:
                        save_checkpoint(folder, task, cancel.state, offset + cancel.done)
                    raise
                if not isinstance(result, Continue):
                    return keep(task, result)
                offset += result.done
                resume = result.state
                save_checkpoint(folder, task, resume, offset)
                if report(offset, task.cost) is False:  # a cancel: the checkpoint keeps all
                    raise pop.Cancelled()
        return train
    pop.run_parallel([job(t) for t in tasks], [t.cost for t in tasks], progress, workers)


POLL_SECONDS = 0.2  # how often a cluster run looks for results and for a cancel


def _run_on_cluster(tasks: list[Task], save, progress, client, folder: Path | None) -> None:
    from dask.distributed import as_completed

    pause = None if folder is None else SLICE_SECONDS
    total = sum(t.cost for t in tasks)

    def submit(task: Task):
        return client.submit(execute, task.fn, *task.args, resume=task.resume,
                             pause_after=pause, pure=False)
    # the costliest first, as on threads, so that the last tasks to finish are short ones
    futures = {submit(t): t for t in sorted(tasks, key=lambda t: -t.cost)}
    pending = as_completed(futures)
    done = 0
    try:
        while not pending.is_empty():
            for future in pending.next_batch(block=False) if pending.has_ready() else []:
                task = futures.pop(future)
                try:
                    result = future.result()  # a task's error is raised here, with its trace
                except Exception:
                    if progress is not None and progress(done, total) is False:
                        raise pop.Cancelled() from None  # e.g. Ctrl-C stopped local workers
                    raise
                if isinstance(result, Continue):  # it paused: keep its checkpoint, go on
                    save_checkpoint(folder, task, result.state, result.done)
                    task = replace(task, cost=task.cost - result.done, resume=result.state,
                                   done=task.done + result.done)
                    later = submit(task)
                    futures[later] = task
                    pending.add(later)
                    done += result.done
                else:
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

