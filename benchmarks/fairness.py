"""Does a running job slow the Playground?  Its throughput and redraws alone and beside a sweep.

Starts one Streamlit server and, in headless Chromium, trains in the
Playground (``live_update.measure_app``): alone; while a sweep trains in a
process of its own as a public server runs it (the very command
``runner.Scheduler`` starts: ``python -m minidl run-job sweep FOLDER --nice N
--workers W`` with the public limits); and, for comparison, beside the same
sweep at normal priority and beside one on two workers (the local default).
Targets (issue 9, for the public demo): beside a job, ≥ 70 % of the alone
throughput and ≥ 5 redraws/s.  Exits 1 when a target is missed, unless
``--report-only``.
``--quick``: alone and beside the public server's job only (the two the targets are about).
Usage: python benchmarks/fairness.py [--seconds 10] [--quick] [--report-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/<name>.py` puts benchmarks/, not ROOT, on sys.path
sys.path.insert(0, str(ROOT / "benchmarks"))

from live_update import free_port, measure_app, streamlit_server  # noqa: E402

from minidl import jobs  # noqa: E402
from minidl.experiments import sweeps  # noqa: E402
from minidl.jobs import limits  # noqa: E402

QUERY = "hidden=25,25,25&epochs=10000"  # the report's network, as measured before


@contextlib.contextmanager
def sweep_process(nice: int, workers: int):
    """The default sweep trained by ``python -m minidl run-job`` at ``nice`` on ``workers``."""
    folder = jobs.create(sweeps.SWEEP, sweeps.SweepSpec())
    process = subprocess.Popen([sys.executable, "-m", "minidl", "run-job", "sweep", str(folder),
                                "--nice", str(nice), "--workers", str(workers)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not jobs.locked(folder):  # the job has started (its imports are done)
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the sweep did not start")
            time.sleep(0.1)
        time.sleep(1.0)
        yield
    finally:
        process.kill()
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each measuring window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="leave out the comparisons")
    args = parser.parse_args()
    os.environ[jobs.RESULTS_ENV] = tempfile.mkdtemp()
    os.environ[limits.PUBLIC_ENV] = "1"  # the public server's limits
    nice = limits.get("MINIDL_JOB_NICE") or 0
    workers = limits.get("MINIDL_JOB_WORKERS") or 1
    os.environ.pop(limits.PUBLIC_ENV)
    local_workers = limits.get("MINIDL_JOB_WORKERS") or 1
    with streamlit_server(free_port()) as url:
        alone = measure_app(url, QUERY, args.warmup, args.seconds)
        with sweep_process(nice, workers):
            beside = measure_app(url, QUERY, args.warmup, args.seconds)
        rows = [("alone", alone), (f"beside a sweep (nice {nice}, {workers} worker)", beside)]
        for row_nice, row_workers in ([] if args.quick else
                                      [(0, workers), (nice, local_workers)]):
            with sweep_process(row_nice, row_workers):
                rows.append((f"beside a sweep (nice {row_nice}, {row_workers} worker"
                             f"{'s' if row_workers > 1 else ''})",
                             measure_app(url, QUERY, args.warmup, args.seconds)))
    print(f"{os.cpu_count()} CPUs; Playground with default settings and the report's "
          f"2-25-25-25-2, {args.seconds:g} s windows")
    for name, (redraws, epochs) in rows:
        print(f"  {name:36} {epochs:6.2f} epochs/s ({100 * epochs / alone[1]:3.0f} % of alone), "
              f"{redraws:4.1f} redraws/s")
    ok = beside[1] >= 0.7 * alone[1] and beside[0] >= 5
    print("targets beside a public server's job (>= 70 % throughput, >= 5 redraws/s): "
          + ("met" if ok else "MISSED"))
    return 0 if ok or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
