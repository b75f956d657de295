"""Cross-validation speed: the batched population engine against one-network-at-a-time.

1. The same grid with engine="batched" and engine="sequential", side by side
   in this process (one thread each): wall times and ratio.  Two grids: a
   default one (48 configurations × 5 folds, minibatch 1/10/20 as in the report)
   and 24 configurations × 5 folds at minibatch 10/20 only, where the batched
   matmuls, not per-step overhead, dominate and the ratio is lowest.
2. The default full sweep (all 9 activation × optimizer pairs, default grids,
   5 folds) with the batched engine: wall time.
Usage: python benchmarks/cv_speed.py [--epochs 25] [--skip-full] [--points 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import cv, data, hparams, jobs, sweeps  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--compare-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-full", action="store_true")
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
    if args.skip_full:
        return
    steps = jobs.estimate(sweeps.SWEEP, sweeps.SweepSpec(epochs=args.epochs,
                                                         n_train=args.points)).steps
    print(f"full default sweep: 9 pairs, 5 folds, {args.epochs} epochs, {steps:,} member-steps")
    start = time.perf_counter()
    result = sweeps.sweep(X, y, epochs=args.epochs)
    elapsed = time.perf_counter() - start
    print(f"  wall time: {elapsed:.1f} s ({elapsed / 60:.2f} min)")
    print(result.optimal.to_string())


if __name__ == "__main__":
    main()
