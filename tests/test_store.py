"""minidl.jobs.store: one database of saved jobs — where it is, what it survives, and that a
damaged one is a message."""

import os
import sqlite3
from pathlib import Path

import helpers
import pytest
from streamlit.testing.v1 import AppTest

from minidl import jobs
from minidl.cli import main
from minidl.experiments import ablation, studies, sweeps
from minidl.jobs import runner, store

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
ROOT = Path(__file__).resolve().parent.parent


def tiny() -> sweeps.SweepSpec:
    return sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [60]}},
                            folds=2, epochs=1, n_train=120)


def fresh_store(monkeypatch, url: str) -> None:
    monkeypatch.setenv(store.STORAGE_ENV, url)


def test_the_default_store_is_one_sqlite_file_in_the_results_root_in_wal_mode(tmp_path):
    folder = jobs.create(sweeps.SWEEP, tiny())
    db = tmp_path / "minidl.db"
    assert db.is_file() and jobs.find(folder).store.where == str(db)
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT kind, status FROM jobs").fetchall() == [("sweep", "created")]


def test_a_storage_url_puts_the_jobs_elsewhere_and_the_command_line_takes_one(
        tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "elsewhere" / "jobs.db"
    args = ["sweep", "--activations", "tanh", "--optimizers", "sgd", "--folds", "2",
            "--epochs", "1", "--grid", "batch_size=500", "--out", str(tmp_path / "out"),
            "--storage", f"sqlite:///{elsewhere}"]
    assert main(args) == 0
    assert elsewhere.is_file() and not (tmp_path / "minidl.db").exists()
    fresh_store(monkeypatch, f"sqlite:///{elsewhere}")
    assert jobs.info(sweeps.SWEEP, tmp_path / "out").status == "finished"


@pytest.mark.parametrize("content, reason", [
    (b"this is not a database, it is a note", "file is not a database"),
    (b"SQLite format 3\x00" + b"\xff" * 200, "file is not a database"),
])
def test_a_damaged_store_is_a_message_for_the_library_the_cli_and_the_pages(
        tmp_path, monkeypatch, capsys, content, reason):
    db = tmp_path / "damaged.db"
    db.write_bytes(content)
    fresh_store(monkeypatch, f"sqlite:///{db}")
    with pytest.raises(jobs.Damaged, match=f"cannot be used: {reason}"):
        jobs.list_jobs(sweeps.SWEEP)
    assert main(["sweep", "--epochs", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the store") and reason in err and err.count("\n") == 1
    for page, heading in (("pages/cross_validation.py", "Cannot use the saved sweeps"),
                          ("pages/reproduce.py", "Cannot list the saved studies")):
        at = AppTest.from_file(helpers.APP, default_timeout=60)
        at.switch_page(page)
        at.run()
        assert not at.exception, at.exception
        assert any(heading in e.value for e in at.error)
        assert any(reason in c.value for c in at.code)  # the reason, as plain text


def test_a_store_of_a_newer_minidl_is_refused_with_a_message(tmp_path, monkeypatch):
    db = tmp_path / "newer.db"
    fresh_store(monkeypatch, f"sqlite:///{db}")
    jobs.create(sweeps.SWEEP, tiny())
    with sqlite3.connect(db) as c:
        c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(jobs.Damaged, match="written by a newer minidl \\(schema 99"):
        store.Store(f"sqlite:///{db}")


def test_a_hand_edited_row_makes_the_job_damaged_with_the_reason():
    folder = jobs.create(sweeps.SWEEP, tiny())
    assert runner.Runner(sweeps.SWEEP, folder).run().status == "finished"
    job = jobs.find(folder)
    with job.store.begin() as c:
        c.execute(store.ROWS.update().values(data='{"activation": "tanh", "mean_score": 7}'))
    info = jobs.info(sweeps.SWEEP, folder)
    assert info.status == "damaged" and "column optimizer is missing" in info.error
    with job.store.begin() as c:
        c.execute(store.ROWS.update().values(data="[1, 2"))
    assert "is not an object of values" in jobs.info(sweeps.SWEEP, folder).error


@pytest.mark.slow
def test_the_shipped_results_import_once_as_finished_jobs():
    docs = ROOT / "docs" / "results"
    imported = {"sweep200": sweeps.SWEEP, "ours200": studies.STUDY, "ours400": studies.STUDY,
                "paper400": studies.STUDY, "ablation": ablation.ABLATION}
    for name, kind in imported.items():
        info = jobs.info(kind, docs / name)
        assert info.status == "finished" and info.done == info.total > 0, (name, info.error)
    assert len(jobs.list_jobs(studies.STUDY)) == 3  # once: looking again imports nothing
    jobs.info(studies.STUDY, docs / "ours200")
    assert len(jobs.list_jobs(studies.STUDY)) == 3
    assert jobs.info(studies.STUDY, docs / "paper400").spec == studies.paper_spec(10, 400)
    assert sweeps.load(docs / "sweep200").optimal.shape[0] == 3
    assert not list((docs / "sweep200").glob("*.tmp"))  # nothing written into the repository


def test_retention_never_follows_a_link_out_of_a_job(tmp_path, monkeypatch):
    folder = jobs.create(sweeps.SWEEP, tiny())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"x" * (3 << 20))
    os.symlink(outside, folder / "link")
    assert jobs.retention.folder_bytes(folder) < 1 << 20  # the link's target is not counted
    monkeypatch.setenv("MINIDL_KEEP_JOBS", "1")
    other = jobs.create(sweeps.SWEEP, tiny())
    helpers.set_job(folder, updated="2000-01-01T00:00:00+00:00")
    assert jobs.prune([sweeps.SWEEP]) == [folder]
    assert (outside / "big.bin").exists() and other.exists()  # nothing outside is deleted
