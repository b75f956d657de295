"""Helpers shared by test modules."""

from pathlib import Path

import pytest

from minidl import jobs, sweeps


def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results folder for sweeps (never the repository's) and the default cap.

    A module makes it its fixture: ``results_dir = pytest.fixture(autouse=True)(helpers.results_dir)``.
    """
    root = tmp_path / "sweeps"
    monkeypatch.setenv(jobs.RESULTS_ENV, str(root))
    monkeypatch.delenv(sweeps.CAP_ENV, raising=False)
    return root
