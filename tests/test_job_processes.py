"""Jobs in processes of their own: the scheduler's line, kill -9 at any point, one process per job."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import pandas as pd
import pytest

from minidl import jobs
from minidl.experiments import studies, sweeps
from minidl.jobs import runner, scheduler

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
ROOT = Path(__file__).resolve().parent.parent
SWEEP, STUDY = sweeps.SWEEP, studies.STUDY
pytestmark = pytest.mark.slow  # every test starts a job process, or several

# eight populations (one per batch size), each saved when it finishes: a few seconds
SWEEP_ARGS = ["--activations", "tanh", "--optimizers", "sgd", "--folds", "2", "--epochs", "40",
              "--lr", "0.1", "--momentum", "0", "--batch-size", "20,21,22,23,24,25,26,27", "--workers", "1"]
STUDY_ARGS = ["--runs", "2", "--epochs", "6", "--workers", "1"]


def sweep_spec(epochs: int = 40) -> sweeps.SweepSpec:
    return sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.1],
                            "batch_size": list(range(20, 28))}}, folds=2, epochs=epochs)


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def saved_units(kind, folder: Path) -> int:
    """The units a job at ``folder`` has saved in the store so far (0 before it exists)."""
    return jobs.info(kind, folder).done


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "minidl", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_sweep_killed_mid_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    reference = jobs.create(SWEEP, sweep_spec(), tmp_path / "reference")
    assert runner.Runner(SWEEP, reference).run().status == "finished"
    folder = tmp_path / "killed"
    process = cli("sweep", *SWEEP_ARGS, "--out", str(folder))
    wait_for(lambda: saved_units(SWEEP, folder) >= 2, what="two populations saved")
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = jobs.info(SWEEP, folder)
    assert killed.status == "interrupted" and 2 <= killed.done < 8  # not a finished sweep
    finished = cli("sweep", *SWEEP_ARGS, "--out", str(folder))
    assert finished.wait(120) == 0, finished.stderr.read()
    columns = ["batch_size", "lr", "split0_score", "split1_score", "mean_score"]
    ours = pd.read_csv(folder / "tanh-sgd.csv")[columns].sort_values("batch_size")
    theirs = pd.read_csv(reference / "tanh-sgd.csv")[columns].sort_values("batch_size")
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
    assert jobs.info(SWEEP, folder).status == "finished"


def test_a_study_killed_mid_run_resumes_to_exactly_the_uninterrupted_result(tmp_path):
    folder = tmp_path / "killed"
    process = cli("reproduce", *STUDY_ARGS, "--out", str(folder))
    wait_for(lambda: saved_units(STUDY, folder) >= 2, what="the first pair saved")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert jobs.info(STUDY, folder).status == "interrupted"
    assert cli("reproduce", *STUDY_ARGS, "--out", str(folder)).wait(300) == 0
    reference = jobs.create(STUDY, studies.paper_spec(runs=2, epochs=6), tmp_path / "reference")
    assert runner.Runner(STUDY, reference).run().status == "finished"
    ours, theirs = studies.load(folder), studies.load(reference)
    pd.testing.assert_frame_equal(ours.runs, theirs.runs)
    pd.testing.assert_frame_equal(ours.losses, theirs.losses)


def test_a_second_process_on_a_job_is_refused_with_one_line(tmp_path):
    folder = tmp_path / "job"
    args = [a if a != "40" else "2000" for a in SWEEP_ARGS]  # a long sweep
    first = cli("sweep", *args, "--out", str(folder))
    try:
        wait_for(lambda: jobs.locked(folder), what="the first process to start")
        second = cli("sweep", *args, "--out", str(folder))
        assert second.wait(60) == 2
        error = second.stderr.read().strip()
        assert "being trained by another process" in error and "Traceback" not in error
        assert f"pid {first.pid}" in error and len(error.splitlines()) == 1
        assert jobs.info(SWEEP, folder).status == "running"  # not "interrupted"
    finally:
        first.kill()
        first.wait()
    assert jobs.info(SWEEP, folder).status == "interrupted"  # its process is gone


def test_the_scheduler_trains_in_another_process_and_bounds_its_line(tmp_path):
    line = scheduler.Scheduler(running=1, waiting=1, per_owner=1, nice=5, workers=2, poll=0.05)
    try:
        long = jobs.create(SWEEP, sweep_spec(epochs=2000), owner="ann")
        first = line.submit(SWEEP, long, "ann")
        wait_for(lambda: jobs.locked(long), what="the job's process")
        holder = jobs.lock_holder(long)
        assert holder != os.getpid()  # trained by a process of its own…
        assert os.getpriority(os.PRIO_PROCESS, holder) >= os.getpriority(
            os.PRIO_PROCESS, 0) + 5  # …at a lower priority
        command = Path(f"/proc/{holder}/cmdline").read_bytes().split(b"\0")
        assert command[command.index(b"--workers") + 1] == b"2"  # on the scheduler's workers
        with pytest.raises(scheduler.QueueFull, match="You already have 1 job"):
            line.submit(SWEEP, jobs.create(SWEEP, sweep_spec(), owner="ann"), "ann")
        second = line.submit(SWEEP, jobs.create(SWEEP, sweep_spec(), owner="bob"), "bob")
        assert second.status == "queued" and second.position == 1
        assert "busy" in line.refusal("cat")
        with pytest.raises(scheduler.QueueFull, match="busy"):
            line.submit(SWEEP, jobs.create(SWEEP, sweep_spec(), owner="cat"), "cat")
        assert line.active() == {first.name, second.name}
        second.cancel()  # a waiting job just leaves the line
        assert jobs.info(SWEEP, second.folder).status == "cancelled"
        wait_for(lambda: first.progress().done > 0, what="progress from the job's process")
        assert first.progress().status == "running" and first.progress().total > 0
        first.cancel()
        wait_for(lambda: not first.active, what="the cancelled job to end")
        stopped = jobs.info(SWEEP, long)
        assert stopped.status == first.status == "cancelled" and not jobs.locked(long)
        assert line.refusal("ann") is None  # the line has room again
    finally:
        line.shutdown()


def test_a_job_process_that_dies_leaves_the_job_failed_with_the_reason(tmp_path):
    line = scheduler.Scheduler(running=1, waiting=1, poll=0.05)
    try:
        folder = jobs.create(SWEEP, sweep_spec(epochs=2000))
        job = line.submit(SWEEP, folder)
        wait_for(lambda: jobs.locked(folder), what="the job's process")
        os.kill(jobs.lock_holder(folder), signal.SIGKILL)  # as the out-of-memory killer does
        wait_for(lambda: not job.active, what="the scheduler to notice")
        info = jobs.info(SWEEP, folder)
        assert info.status == "failed" and "killed" in info.error and "memory" in info.error
        assert info.resumable
    finally:
        line.shutdown()
