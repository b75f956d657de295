"""Cross-validation speed: the batched population engine against one-network-at-a-time.

1. The same grid with engine="batched" and engine="sequential", side by side
   in this process (one thread each): wall times and ratio.  Two grids: a
   default one (48 configurations × 5 folds, minibatch 1/10/20 as in the report)
   and 24 configurations × 5 folds at minibatch 10/20 only, where the batched
   matmuls, not per-step overhead, dominate and the ratio is lowest.
2. With ``--full``: the default full sweep (all 9 activation × optimizer pairs,
   default grids, 5 folds, 1000 points) through both ways a user runs it, each in
   a process of its own, wall time: the command line (``python -m minidl sweep
   --workers W``) and the app's job process (``python -m minidl run-job sweep FOLDER
   --nice 10 --workers W``, W = ``MINIDL_JOB_WORKERS``, 2 on your own machine).
   About 3 minutes each at 25 epochs on 2 cores, hence behind a flag.
Usage: python benchmarks/cv_speed.py [--full [--epochs 25] [--workers 2] [--folds 5]] [--points 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import data, hparams, jobs  # noqa: E402
from minidl.experiments import cv, sweeps  # noqa: E402
from minidl.jobs import limits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed_process(command: list[str], env: dict | None = None) -> float:
    """Wall seconds of ``python -m minidl COMMAND…`` run from the repository root."""
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "minidl", *command], cwd=ROOT, env=environment,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"minidl {command[0]} failed: {done.stderr[-2000:]}")
    return elapsed


def full_sweep(epochs: int, workers: int | None, folds: int) -> None:
    """The default sweep through the command line and through the app's job process."""
    job_workers = workers or limits.get("MINIDL_JOB_WORKERS") or 1
    cli_workers = workers or 2  # the command line's default
    spec = sweeps.SweepSpec(epochs=epochs, folds=folds)
    steps = jobs.estimate(sweeps.SWEEP, spec).steps
    print(f"full default sweep: 9 pairs, {folds} folds, {epochs} epochs, {steps:,} member-steps")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[jobs.RESULTS_ENV] = tmp  # a store of its own, not the app's
        cli = timed_process(["sweep", "--epochs", str(epochs), "--folds", str(folds),
                             "--workers", str(cli_workers),
                             "--out", str(Path(tmp) / "cli")])
        print(f"  command line (--workers {cli_workers}): wall time: {cli:.1f} s "
              f"({cli / 60:.2f} min)")
        folder = jobs.create(sweeps.SWEEP, spec, Path(tmp) / "app")
        app = timed_process(["run-job", "sweep", str(folder), "--nice", "10",
                             "--workers", str(job_workers)],
                            env={"MINIDL_JOB_WORKERS": str(job_workers)})
        print(f"  app job process (MINIDL_JOB_WORKERS={job_workers}): wall time: {app:.1f} s "
              f"({app / 60:.2f} min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--compare-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full", action="store_true",
                        help="also time the full default sweep (minutes)")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers of the full sweep (default: the command line's 2 and "
                             "the app's MINIDL_JOB_WORKERS)")
    parser.add_argument("--folds", type=int, default=5,
                        help="folds of the full sweep (the report: 5); fewer for a quick check")
    parser.add_argument("--points", type=int, default=1000,
                        help="training points (the report: 1000); fewer for a quick check")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = data.disk(args.points, seed=0)
    comparisons = [
        ("Tanh + RMSProp, its default grid (minibatch 1, 10, 20)", "rmsprop",
         hparams.default_grid("tanh", "rmsprop"), 1),
        ("Tanh + Adam, minibatch 10 and 20 only", "adam",
         {"lr": [1e-3, 1e-2, 1e-1], "batch_size": [10, 20], "beta1": [0.8, 0.9],
          "beta2": [0.99, 0.999]}, args.compare_epochs),
    ]
    for title, optimizer, grid, epochs in comparisons:
        configs = len(cv.configurations(hparams.check_grid(grid, optimizer)))
        print(f"{title}: {configs} configurations x 5 folds, {epochs} epoch(s)")
        times = {"batched": float("inf"), "sequential": float("inf")}
        scores = {}
        for _ in range(args.repeats):  # interleaved, best of N: robust to a noisy machine
            for engine in times:
                start = time.perf_counter()
                result = cv.grid_search(X, y, "tanh", optimizer, grid, folds=5, epochs=epochs,
                                        engine=engine)
                times[engine] = min(times[engine], time.perf_counter() - start)
                scores[engine] = result.table["mean_score"].max()
        for engine, seconds in times.items():
            print(f"  {engine:>10}: {seconds:7.2f} s (best of {args.repeats}), "
                  f"best mean CV score {scores[engine]:.4f}")
        print(f"  batched engine speed-up: {times['sequential'] / times['batched']:.1f}x")
    if args.full:
        full_sweep(args.epochs, args.workers, args.folds)

if __name__ == "__main__":
    main()
