"""What 400 saved sweeps cost the Cross-validation page per rerun, with and without the listing cache.

Makes ``--jobs`` copies of one finished sweep under a temporary results root,
then times (1) ``jobs.list_jobs`` reading every job's files (the cache
emptied each time) against a cached listing, and (2) a rerun of the
Cross-validation page in ``AppTest`` with those jobs against a rerun with
none.  Target (issue 9): 400 saved jobs cost < 0.3 s per rerun.
Usage: python benchmarks/listing.py [--jobs 400] [--reruns 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    for i in range(args.jobs - 1):
        shutil.copytree(first, first.with_name(f"{first.name[:-6]}{i:06x}"))

    def uncached():
        jobs.store._LISTED.clear()
        return jobs.list_jobs(sweeps.SWEEP)
    assert len(uncached()) == args.jobs
    cold = seconds(uncached, 3)
    warm = seconds(lambda: jobs.list_jobs(sweeps.SWEEP), 5)
    full = page_rerun(args.reruns)
    shutil.rmtree(root)
    print(f"list_jobs of {args.jobs} sweeps: reading every file {cold:.3f} s, cached "
          f"{warm:.3f} s ({cold / warm:.0f}x less)")
    print(f"Cross-validation page rerun: {full:.3f} s with {args.jobs} saved sweeps, "
          f"{bare:.3f} s with 1: the saved sweeps cost {full - bare:.3f} s per rerun "
          f"(target < 0.3 s)")


if __name__ == "__main__":
    main()
