"""Helpers shared by test modules."""

from pathlib import Path

import pytest

from minidl import jobs, studies, sweeps


def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results root (never the repository's) and the default caps; returns the folder
    sweeps are saved in (``sweeps.SWEEP.root()``: ``<root>/sweeps``), not created yet.

    A module makes it its fixture: ``results_dir = pytest.fixture(autouse=True)(helpers.results_dir)``.
    """
    monkeypatch.setenv(jobs.RESULTS_ENV, str(tmp_path))
    monkeypatch.delenv(sweeps.SWEEP.cap_env, raising=False)
    monkeypatch.delenv(studies.STUDY.cap_env, raising=False)
    return sweeps.SWEEP.root()
