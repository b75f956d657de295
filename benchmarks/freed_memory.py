"""What keeping freed memory (``runtime.keep_freed_memory``) saves a population.

Trains 20 Adam members (4 learning rates × 5 folds, minibatch 20) on the disk for
``--epochs`` epochs after a warm-up epoch, in a fresh process with glibc's defaults ("off")
and in one with the setting ("on"), alternately, ``--repeats`` times each; prints the
median page faults and seconds of each and their ratios.  mallopt is process-wide and
cannot be undone, hence one process per measurement.  The fault counts vary a lot from
run to run (the heap's layout decides which blocks glibc hands back): read the medians.
Usage: python benchmarks/freed_memory.py [--epochs 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """
import resource, sys, time, torch
from minidl import data, runtime
from minidl.engine import fit
from minidl.experiments import cv
if sys.argv[1] == "on" and not runtime.keep_freed_memory():
    sys.exit("the C library is not glibc: mallopt is not there to tune")
torch.set_num_threads(1)
X, y = data.disk(1000, seed=0)
splits = cv.kfold(1000, 5, seed=0)
members = [fit.Member({**cv.complete({"lr": lr, "batch_size": 20}), "optimizer": "adam"},
                      train, val, seed=f)
           for lr in (0.001, 0.01, 0.1, 0.2) for f, (train, val) in enumerate(splits)]
fit.fit(X, y, members, cv.SIZES, 1)  # warm: the allocator's pools fill
before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
fit.fit(X, y, members, cv.SIZES, 1 + int(sys.argv[2]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, time.perf_counter() - start)
"""


def measure(setting: str, epochs: int) -> tuple[int, float]:
    # run in ROOT: ``python -c`` finds the minidl package of this checkout there
    out = subprocess.run([sys.executable, "-c", WORKLOAD, setting, str(epochs)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode:
        sys.exit(out.stderr[-2000:])
    faults, seconds = out.stdout.split()
    return int(faults), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[tuple[int, float]]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        for setting in runs:
            runs[setting].append(measure(setting, args.epochs))
    median = {s: (statistics.median(f for f, _ in r), statistics.median(t for _, t in r))
              for s, r in runs.items()}
    for setting, (faults, seconds) in median.items():
        print(f"{setting:>3}: median {faults:,.0f} page faults, {seconds:.2f} s "
              f"({args.epochs} epochs, {args.repeats} runs: faults "
              f"{', '.join(str(f) for f, _ in runs[setting])})")
    (off_f, off_t), (on_f, on_t) = median["off"], median["on"]
    print(f"faults off / on: {off_f / max(on_f, 1):.2f}x; time off / on: {off_t / on_t:.2f}x")


if __name__ == "__main__":
    main()
