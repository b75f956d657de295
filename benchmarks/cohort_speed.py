"""A class on one core: visitors' runs co-batched in one cohort vs taking turns.

The training service (``ui/background.py``) trains every Playground run of one shape as a
cohort (``minidl.engine.cohort``).  This measures, for cohorts of N runs of the default
Playground settings (2-25-25-25-2 Tanh + SGD, batch 1, 1000 training points), each run
with its own learning rate and data draw, the epochs a second *each* run trains:

- co-batched: the N runs as one cohort, as the service trains them;
- time-shared: one run alone, its epochs a second divided by N — what N runs in turns
  (or N processes on one core) would each get.

Both in this one process with one torch thread, interleaved by N (the lone run best of
two: its timings varied by a third from one to the next); the ratio is
co-batched / time-shared (how many times faster each visitor trains).  Layer health and
replay snapshots are on, as in the app.
Usage: python benchmarks/cohort_speed.py [--quick] [--sizes 1,16,32,64] [--seconds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# `python benchmarks/<name>.py` puts benchmarks/, not the repository root, on sys.path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidl import Config, Run, runtime  # noqa: E402
from minidl.engine.cohort import Cohort  # noqa: E402


def epochs_per_second(runs: list[Run], seconds: float) -> float:
    """Epochs a second each of ``runs`` trains as one cohort, over about ``seconds``."""
    cohort = Cohort(runs)
    while not cohort.train_steps():  # the first epoch: warm-up, not timed
        pass
    epochs, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds or not epochs:
        epochs += cohort.train_steps()
    return epochs / (time.perf_counter() - began)


def visitors(count: int) -> list[Run]:
    """``count`` default Playground runs, each with its own learning rate and data draw."""
    return [Run(Config(lr=0.005 + 0.0005 * i, data_seed=i, init_seed=i, epochs=10**6))
            for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,16,32,64", help="cohort sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds a side")
    parser.add_argument("--quick", action="store_true", help="sizes 1,4 for 0.5 s (a check)")
    args = parser.parse_args()
    runtime.setup()
    sizes = [1, 4] if args.quick else [int(n) for n in args.sizes.split(",")]
    seconds = 0.5 if args.quick else args.seconds
    epochs_per_second(visitors(1), seconds)  # warm-up: the first timing of a process is slow
    print(f"{'runs':>5} {'co-batched':>11} {'time-shared':>12} {'ratio':>7}   (epochs/s each)")
    for n in sizes:
        alone = max(epochs_per_second(visitors(1), seconds) for _ in range(2))  # best of 2
        together = epochs_per_second(visitors(n), seconds)
        print(f"{n:5d} {together:11.2f} {alone / n:12.2f} {together * n / alone:6.1f}x",
              flush=True)


if __name__ == "__main__":
    main()
