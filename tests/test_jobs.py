from typing import NamedTuple

import pytest

from minidl import jobs

META = jobs.MetaFile("job.json")


class Info(NamedTuple):
    name: str
    created: str


def test_new_folders_are_unique_and_listed_newest_first(tmp_path):
    first = META.create(tmp_path, {"x": 1})
    second = META.create(tmp_path, {"x": 2})
    META.update(first, created="2000-01-01T00:00:00+00:00")
    (tmp_path / "no-meta").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "job.json").write_text("{")
    assert first != second and META.read(second) == {
        "x": 2, "created": META.read(second)["created"], "status": "created"}
    listed = META.list(tmp_path, lambda folder: Info(folder.name, META.read(folder)["created"]))
    assert [i.name for i in listed] == [second.name, first.name]

def test_a_job_left_running_without_a_runner_reads_as_interrupted(tmp_path):
    folder = tmp_path / "job"
    assert jobs.status({"status": "running"}, folder, active=()) == "interrupted"
    assert jobs.status({"status": "queued"}, folder, active={"job"}) == "queued"
    assert jobs.status({"status": "cancelled"}, folder, active=()) == "cancelled"
    assert jobs.status({}, folder, active=()) == "created"


def test_progress_eta_follows_the_pace_so_far():
    assert jobs.Progress("running", 25, 100, 10.0).eta == pytest.approx(30.0)
    assert jobs.Progress("running", 0, 100, 1.0).eta is None
    assert jobs.Progress("running", 0, 0, 1.0).fraction == 1.0
    assert jobs.Progress("running", 25, 100, 10.0).describe() == (
        "25 of 100 optimizer steps (25%) · 10 s elapsed · about 30 s left")
    assert jobs.format_seconds(75.2) == "1 min 15 s"
    assert jobs.format_seconds(None) == "…"
