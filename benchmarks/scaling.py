"""Scaling on a Dask cluster: the full default sweep on a LocalCluster of 1 and 2 workers,
the per-task overhead, and a model of the time on N workers.

1. Startup: a LocalCluster of one worker process (one thread), until the worker
   has imported minidl.
2. Per-task overhead: tiny tasks (they do nothing) through the scheduler, one
   at a time (round trip) and all at once (throughput, per task); and the cost of a
   pause: one slice of the sweep trained whole on the worker, then again pausing
   after every epoch, its checkpoint going to this process (saved to disk, as a job
   saves it) and back each time.
3. The full default sweep (`python -m minidl sweep`: 9 pairs, 5 folds, 25
   epochs), saved as a job, on 1 worker, then on 2 (the cluster scaled up):
   wall time, tasks, and the model's prediction for 2 beside the measurement.
4. The model T(N) ≈ T_serial/N + (overhead·tasks + pause·pauses)/N + startup (at
   least the longest task), where T_serial is the sweep's training time on one worker,
   a task pauses every ``tasks.SLICE_SECONDS`` of its cost model's time,
   applied to the README's 200-epoch sweep (`--epochs 200 --batch-size 10,20`):
   its T_serial is measured on one worker at `--probe-epochs` and scaled by
   epochs (a population's time is linear in its epochs).

Usage: python benchmarks/scaling.py [--quick] [--epochs 25] [--max-workers 2]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import hparams, jobs  # noqa: E402
from minidl.experiments import cv, sweeps  # noqa: E402
from minidl.jobs import runner, tasks  # noqa: E402

README_EPOCHS, README_BATCHES = 200, [10, 20]


def nothing(progress=None) -> None:
    """A task that does no work: what is left is the cluster's own cost."""


def sweep_spec(epochs: int, batches: list[int] | None = None, quick: bool = False
               ) -> sweeps.SweepSpec:
    grids = {o: {**hparams.optimizer_grid(o), **({"batch_size": batches} if batches else {})}
             for o in hparams.OPTIMIZERS}
    if quick:  # one pair
        return sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": grids["sgd"]}, epochs=epochs)
    return sweeps.SweepSpec(grids=grids, epochs=epochs)


def count_tasks(spec: sweeps.SweepSpec, folder: Path) -> tuple[int, int, float, list[float]]:
    """Tasks of a new job of ``spec``, its optimizer steps, the share of the cost model's
    time (``tasks.seconds``) that its longest task takes, and each task's share."""
    try:
        job = jobs.find(folder)
    except FileNotFoundError:  # a sweep not saved yet: its tasks are all of its work
        job = jobs.find(jobs.create(sweeps.SWEEP, spec, folder))
    todo = [t for p in sweeps.SWEEP.parts(spec) for t in sweeps.SWEEP.tasks(spec, p, job)]
    model = []
    for t in todo:
        configs = t.args[2]
        members = len(configs) * spec.folds
        model.append(tasks.seconds(members, t.cost // members,
                                   cv.complete(configs[0])["batch_size"]))
    return len(todo), sum(t.cost for t in todo), max(model) / sum(model), \
        [m / sum(model) for m in model]


def pauses(serial: float, shares: list[float]) -> int:
    """Pauses of the tasks whose shares of ``serial`` seconds of training are ``shares``."""
    return sum(math.ceil(serial * share / tasks.SLICE_SECONDS) - 1 for share in shares)


PAUSE_REPEATS = 3  # runs whole and paused, alternately, of which the best of each counts


def pause_cost(client, spec: sweeps.SweepSpec, folder: Path) -> tuple[float, int, int]:
    """Seconds a pause costs (checkpoint to this process, into the store and back), measured on one
    slice of ``spec`` trained whole and then pausing after every epoch, ``PAUSE_REPEATS``
    times each, alternately (the best of each: one run is too noisy here); its pauses, and the
    bytes of its checkpoint in the store."""
    job = jobs.find(folder)
    task = max((t for p in sweeps.SWEEP.parts(spec) for t in sweeps.SWEEP.tasks(spec, p, job)),
               key=lambda t: t.cost)

    def whole() -> float:
        start = time.perf_counter()
        client.submit(tasks.execute, task.fn, *task.args, pure=False).result()
        return time.perf_counter() - start

    def paused() -> tuple[float, int]:
        start, state, count = time.perf_counter(), None, 0
        while True:
            result = client.submit(tasks.execute, task.fn, *task.args, resume=state,
                                   pause_after=0.0, pure=False).result()
            if not isinstance(result, tasks.Continue):
                return time.perf_counter() - start, count
            job.save(task, result.state, result.done)
            state, count = result.state, count + 1

    wholes, pauses = [], []
    for _ in range(PAUSE_REPEATS):
        wholes.append(whole())
        pauses.append(paused())
    size = sum(len(c["state"]) for c in job.store.checkpoints(job.id, task.part))
    count = pauses[0][1]
    return (min(t for t, _ in pauses) - min(wholes)) / max(1, count), count, size


def timed_sweep(spec: sweeps.SweepSpec, root: Path, name: str, workers: int, address: str
                ) -> tuple[float, int, int]:
    """Seconds to train a new saved sweep of ``spec`` on the cluster, its tasks and steps."""
    folder = jobs.create(sweeps.SWEEP, spec, root / name)
    tasks, steps, _, _ = count_tasks(spec, folder)
    start = time.perf_counter()
    progress = runner.Runner(sweeps.SWEEP, folder, workers, address).run()
    seconds = time.perf_counter() - start
    assert progress.status == "finished", progress
    return seconds, tasks, steps


def model(serial: float, overhead: float, tasks: int, startup: float, longest: float,
          n: int, pause: float = 0.0, paused: int = 0) -> float:
    """T(N) = T_serial/N + (overhead·tasks + pause·pauses)/N + startup, never below the
    longest task."""
    return max(serial / n + (overhead * tasks + pause * paused) / n, longest) + startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one pair, 1 epoch, few tiny tasks: a check that it runs")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--tiny-tasks", type=int, default=400)
    parser.add_argument("--probe-epochs", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.tiny_tasks, args.probe_epochs = 1, 40, 1
    os.environ[jobs.RESULTS_ENV] = tempfile.mkdtemp()  # a store of its own, not the app's
    torch.set_num_threads(1)
    from dask.distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    client.run(lambda: __import__("minidl.experiments.sweeps"))
    startup = time.perf_counter() - start
    print(f"startup: a LocalCluster of 1 worker process, minidl imported: {startup:.2f} s")

    trips = []
    for _ in range(max(5, args.tiny_tasks // 10)):
        t = time.perf_counter()
        client.submit(nothing, pure=False).result()
        trips.append(time.perf_counter() - t)
    t = time.perf_counter()
    client.gather(client.map(lambda i: nothing(), range(args.tiny_tasks), pure=False))
    overhead = (time.perf_counter() - t) / args.tiny_tasks
    print(f"per-task overhead: {1000 * sorted(trips)[len(trips) // 2]:.1f} ms round trip "
          f"(median of {len(trips)}), {1000 * overhead:.2f} ms per task in a batch of "
          f"{args.tiny_tasks} (1 worker)")

    spec = sweep_spec(args.epochs, quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        probe_spec = sweep_spec(4, quick=args.quick)  # pauses after epochs 1, 2 and 3
        pause, paused, size = pause_cost(client, probe_spec, jobs.create(
            sweeps.SWEEP, probe_spec, Path(tmp) / "pauses"))
    print(f"a pause (checkpoint to this process, to the store and back to a worker): "
          f"{1000 * pause:.0f} ms (one slice paused {paused} times, best of {PAUSE_REPEATS}; its "
          f"checkpoint {size / 1e6:.1f} MB)")
    what = (f"{len(spec.pairs)} pair{'s' * (len(spec.pairs) != 1)}, {spec.folds} folds, "
            f"{spec.epochs} epoch{'s' * (spec.epochs != 1)}")
    times: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in range(1, args.max_workers + 1):
            if n > 1:
                cluster.scale(n)
                client.wait_for_workers(n)
                client.run(lambda: __import__("minidl.experiments.sweeps"))
            seconds, count, steps = timed_sweep(spec, root, f"sweep{n}", n,
                                                cluster.scheduler_address)
            times[n] = seconds
            print(f"default sweep ({what}, {steps:,} optimizer steps, {count} tasks) on "
                  f"{n} worker{'s' * (n != 1)}: {seconds:.1f} s")
        _, _, share, shares = count_tasks(spec, root / "count-default")
        paused = pauses(times[1], shares)
        serial = times[1] - overhead * count - pause * paused
        longest = serial * share
        for n in range(2, args.max_workers + 1):
            predicted = model(serial, overhead, count, 0.0, longest, n, pause, paused)
            print(f"  model for {n} workers: {predicted:.1f} s (measured {times[n]:.1f} s, "
                  f"speed-up {times[1] / times[n]:.2f}x of {n})")

        # the README's 200-epoch sweep, probed on one worker at a few epochs
        cluster.scale(1)
        while len(client.scheduler_info()["workers"]) > 1:
            time.sleep(0.1)
        probe = sweep_spec(args.probe_epochs, README_BATCHES, quick=args.quick)
        probe_seconds, probe_tasks, _ = timed_sweep(probe, root, "probe", 1,
                                                    cluster.scheduler_address)
        readme = sweep_spec(README_EPOCHS, README_BATCHES, quick=args.quick)
        readme_tasks, readme_steps, share, shares = count_tasks(readme, root / "count-readme")
        readme_serial = (probe_seconds - overhead * probe_tasks) * README_EPOCHS \
            / args.probe_epochs
        readme_pauses = pauses(readme_serial, shares)
        print(f"README sweep (--epochs {README_EPOCHS} --batch-size "
              f"{','.join(map(str, README_BATCHES))}: {len(readme.pairs)} pairs, "
              f"{readme_steps:,} optimizer steps, {readme_tasks} tasks): T_serial ≈ "
              f"{readme_serial:.0f} s on 1 worker ({probe_seconds:.1f} s at {args.probe_epochs} "
              f"epoch{'s' * (args.probe_epochs != 1)} × {README_EPOCHS // args.probe_epochs})")
    client.close()
    cluster.close()

    longest = readme_serial * share  # the cost model's longest task, at the measured pace
    print(f"model: T(N) ≈ T_serial/N + (overhead·tasks + pause·pauses)/N + startup = "
          f"{readme_serial:.0f}/N + {overhead * readme_tasks + pause * readme_pauses:.2f}/N + "
          f"{startup:.1f} s ({readme_pauses} pauses; at least the longest task, "
          f"≈ {longest:.0f} s)")
    for n in (1, 2, 4, 8, 16, 32):
        t = model(readme_serial, overhead, readme_tasks, startup, longest, n, pause,
                  readme_pauses)
        print(f"  N = {n:2d} workers: {t / 60:6.1f} min" + (
            "  (fewer tasks than workers: more workers do not help)" if n > readme_tasks
            else ""))
    if args.max_workers > 1:
        n = args.max_workers
        print(f"scaling efficiency measured here: {times[1] / (n * times[n]):.0%} of ideal "
              f"at {n} workers")


if __name__ == "__main__":
    main()
