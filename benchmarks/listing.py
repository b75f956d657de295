"""What 400 saved sweeps cost: a listing, and the Cross-validation page per rerun.

Saves ``--jobs`` finished sweeps (each with the rows of one real run) in a store under a
temporary results root, then times (1) ``jobs.list_jobs`` — one query of the store, no
cache — and (2) a rerun of the Cross-validation page in ``AppTest`` with those jobs
against a rerun with one.  Targets: a listing of 400 jobs < 0.1 s (issue 20), 400 saved
jobs cost < 0.3 s per rerun (issue 9).
Usage: python benchmarks/listing.py [--jobs 400] [--reruns 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/<name>.py` puts benchmarks/, not ROOT, on sys.path

from minidl import jobs  # noqa: E402
from minidl.experiments import sweeps  # noqa: E402
from minidl.jobs import runner  # noqa: E402


def seconds(f, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def page_rerun(repeat: int) -> float:
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("pages/cross_validation.py")
    at.run()
    assert not at.exception, at.exception
    return seconds(at.run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    os.environ[jobs.RESULTS_ENV] = str(root)
    spec = sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.01, 0.1],
                            "batch_size": [50]}}, folds=2, epochs=1)
    first = jobs.create(sweeps.SWEEP, spec)
    assert runner.Runner(sweeps.SWEEP, first).run().status == "finished"
    bare = page_rerun(args.reruns)
    rows = jobs.find(first).rows("tanh-sgd")
    for _ in range(args.jobs - 1):
        copy = jobs.find(jobs.create(sweeps.SWEEP, spec))
        copy.add({"tanh-sgd": rows}, len(rows))
        copy.store.update(copy.id, status="finished")
    listed = jobs.list_jobs(sweeps.SWEEP)
    assert len(listed) == args.jobs and all(j.done == 2 for j in listed)
    listing = seconds(lambda: jobs.list_jobs(sweeps.SWEEP), 5)
    full = page_rerun(args.reruns)
    print(f"list_jobs of {args.jobs} sweeps: {listing:.3f} s (one query of the store, no "
          f"cache; target < 0.1 s)")
    print(f"Cross-validation page rerun: {full:.3f} s with {args.jobs} saved sweeps, "
          f"{bare:.3f} s with 1: the saved sweeps cost {full - bare:.3f} s per rerun "
          f"(target < 0.3 s)")


if __name__ == "__main__":
    main()
