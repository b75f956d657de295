"""Helpers shared by test modules."""

import time
from pathlib import Path

import pytest

from minidl import jobs, limits, runner, sweeps


def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results root (never the repository's) and the default caps; returns the folder
    sweeps are saved in (``sweeps.SWEEP.root()``: ``<root>/sweeps``), not created yet.

    A module makes it its fixture: ``results_dir = pytest.fixture(autouse=True)(helpers.results_dir)``.
    """
    monkeypatch.setenv(jobs.RESULTS_ENV, str(tmp_path))
    for name in (limits.PUBLIC_ENV, *limits.TABLE):  # the local defaults
        monkeypatch.delenv(name, raising=False)
    return sweeps.SWEEP.root()


def tiny_saved_sweep() -> Path:
    """A finished sweep of one pair (Tanh + SGD, two learning rates) in seconds; its folder."""
    spec = sweeps.SweepSpec(activations=("tanh",), optimizers=("sgd",),
                            grids={"sgd": {"lr": [0.05, 0.5], "batch_size": [50]}},
                            folds=2, epochs=1, n_train=100)
    folder = jobs.create(sweeps.SWEEP, spec)
    assert runner.Runner(sweeps.SWEEP, folder).run().status == "finished"
    return folder


def cancel_after(job: runner.Runner, steps: int) -> runner.Runner:
    """Cancel as soon as ``steps`` optimizer steps are done (like a visitor pressing Cancel)."""
    report = job._report

    def reporting(done: int, total: int) -> bool:
        keep_going = report(done, total)
        if done >= steps:
            job.cancel()
        return keep_going
    job._report = reporting
    return job


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
