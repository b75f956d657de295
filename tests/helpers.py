"""Helpers shared by test modules."""

from pathlib import Path

import pytest

from minidl import jobs, limits, sweeps


def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results root (never the repository's) and the default caps; returns the folder
    sweeps are saved in (``sweeps.SWEEP.root()``: ``<root>/sweeps``), not created yet.

    A module makes it its fixture: ``results_dir = pytest.fixture(autouse=True)(helpers.results_dir)``.
    """
    monkeypatch.setenv(jobs.RESULTS_ENV, str(tmp_path))
    for name in (limits.PUBLIC_ENV, *limits.TABLE):  # the local defaults
        monkeypatch.delenv(name, raising=False)
    return sweeps.SWEEP.root()
