import os
from dataclasses import dataclass
from pathlib import Path

import helpers
import pytest

from minidl import jobs
from minidl.jobs import runner, tasks

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)


@dataclass(frozen=True)
class Spec:
    n: int

    def to_dict(self) -> dict:
        return {"n": self.n}


class Counting(jobs.Kind):
    """A kind of job whose single part has ``n`` units of one step each."""

    name, folder, meta_name, unit = "count", "counts", "job.json", "unit"
    cap_env = "MINIDL_STUDY_CAP"

    def spec_from_dict(self, d):
        if not isinstance(d.get("n"), int):
            raise ValueError("n must be an integer")
        return Spec(d["n"])

    def parts(self, spec):
        return ["only"]

    def units(self, spec, part):
        return spec.n

    def steps(self, spec, part, folder=None):
        return spec.n - (0 if folder is None else self.units_done(spec, part, folder))

    def units_done(self, spec, part, folder):
        done = folder / "done.txt"
        return len(done.read_text()) if done.exists() else 0

    def tasks(self, spec, part, folder):
        return [tasks.Task(part, self.steps(spec, part, folder), count, (str(folder), spec.n))]

    def save(self, spec, part, folder, result):
        pass


def count(folder, n, progress=None, resume=None, pause_after=None):
    """Count from the units done to ``n``, one unit (a step) at a time."""
    done = Path(folder) / "done.txt"
    first = len(done.read_text()) if done.exists() else 0
    for i in range(first, n):
        with open(done, "a") as f:
            f.write("x")
        if progress is not None and progress(i + 1 - first, n - first) is False:
            raise runner.pop.Cancelled()


COUNTING = Counting()


def test_new_folders_are_unique_and_listed_newest_first(tmp_path):
    first = jobs.create(COUNTING, Spec(1))
    second = jobs.create(COUNTING, Spec(2))
    assert first.parent == second.parent == tmp_path / "counts"
    COUNTING.meta.update(first, created="2000-01-01T00:00:00+00:00")
    (tmp_path / "counts" / "no-meta").mkdir()
    for name, text in (("broken", "{"), ("a-list", "[]"), ("bad-spec", '{"n": "x"}')):
        (tmp_path / "counts" / name).mkdir()
        (tmp_path / "counts" / name / "job.json").write_text(text)
    assert first != second and COUNTING.meta.read(second) == {
        "n": 2, "owner": None, "created": COUNTING.meta.read(second)["created"],
        "status": "created"}
    listed = jobs.list_jobs(COUNTING)
    # unreadable meta files are listed as damaged (after the others: their names hold no time)
    assert [i.name for i in listed[:2]] == [second.name, first.name]
    assert (listed[0].done, listed[0].total, listed[0].status) == (0, 2, "created")
    damaged = {i.name: i for i in listed[2:]}
    assert set(damaged) == {"broken", "a-list", "bad-spec"}  # "no-meta" holds nothing
    assert all(i.status == "damaged" and i.spec is None and not i.resumable
               for i in damaged.values())
    assert damaged["a-list"].error == "job.json holds a list, not an object of settings"
    assert damaged["bad-spec"].error == "job.json: n must be an integer"


def test_a_runner_trains_what_is_missing_and_an_estimate_counts_steps_against_the_cap(
        tmp_path, monkeypatch):
    folder = jobs.create(COUNTING, Spec(5))
    (folder / "done.txt").write_text("xx")  # two units already saved
    progress = runner.Runner(COUNTING, folder).run()
    assert (progress.status, progress.done, progress.total) == ("finished", 3, 3)
    assert jobs.info(COUNTING, folder).done == 5
    assert jobs.estimate(COUNTING, Spec(5)).allowed
    monkeypatch.setenv("MINIDL_STUDY_CAP", "4")
    assert not jobs.estimate(COUNTING, Spec(5)).allowed


def test_rows_append_under_one_header_and_a_torn_last_line_is_left_out(tmp_path):
    path = tmp_path / "rows.csv"
    schema = {"a": "number", "seed": "count"}
    jobs.append_rows(path, [{"a": 1, "seed": 0}])
    jobs.append_rows(path, [{"seed": 1, "a": 2}])
    assert jobs.read_rows(path, schema).to_dict("records") == [{"a": 1.0, "seed": 0},
                                                                {"a": 2.0, "seed": 1}]
    with open(path, "a") as f:
        f.write("3")  # a process killed mid-append
    assert len(jobs.read_rows(path, schema)) == 2
    assert jobs.read_rows(tmp_path / "missing.csv", schema).empty


@pytest.mark.parametrize("text, reason", [
    ("a,b\n1,x\n", "rows.csv: column seed is missing"),
    ("a,seed\n1,0\nabc,1\n", "rows.csv line 3: a='abc' is not a number"),
    ("a,seed\n1,-1\n", "rows.csv line 2: seed='-1' is not a whole number, 0 or more"),
    ("a,seed\n1,\n", "rows.csv line 2: seed='' is not a whole number, 0 or more"),
    ("a,seed,ok\n1,0,maybe\n", "rows.csv line 2: ok='maybe' is not true or false"),
    ("a,seed,score\n1,0,inf\n", "rows.csv line 2: score='inf' is not empty or a number from 0 to 1"),
    ("a,seed\n1,0,7,8\n", "rows.csv line 2: 4 values under 2 column names"),
])
def test_a_value_of_the_wrong_kind_is_damage_naming_file_line_and_value(tmp_path, text, reason):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(jobs.Damaged, match=reason.replace("(", r"\(")):
        jobs.read_rows(path, {"a": "number", "seed": "count"}, {"ok": "flag", "score": "score"})


def test_a_folder_or_binary_file_in_place_of_a_table_is_damage(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\x00\xff\xfe\n")
    with pytest.raises(jobs.Damaged, match="dir.csv is a folder"):
        jobs.read_rows(tmp_path / "dir.csv", {})
    with pytest.raises(jobs.Damaged, match="bin.csv is not a text file"):
        jobs.read_rows(tmp_path / "bin.csv", {})
    (tmp_path / "empty.csv").write_text("")
    assert jobs.read_rows(tmp_path / "empty.csv", {"seed": "count"}).empty


@pytest.mark.parametrize("torn", ["3", "3,", "3,4", "a,se"])
def test_an_append_after_a_torn_line_cuts_it_off_instead_of_gluing_rows(tmp_path, torn):
    path = tmp_path / "rows.csv"
    jobs.append_rows(path, [{"a": 1, "seed": 0}])
    with open(path, "a") as f:
        f.write(torn)  # killed mid-append: no newline
    jobs.append_rows(path, [{"a": 5, "seed": 6}])
    assert path.read_text() == "a,seed\n1,0\n5,6\n"
    torn_header = tmp_path / "header.csv"
    torn_header.write_text("a,se")  # killed while writing the header itself
    jobs.append_rows(torn_header, [{"a": 5, "seed": 6}])
    assert torn_header.read_text() == "a,seed\n5,6\n"


def test_a_second_runner_on_a_job_is_refused_while_the_first_holds_its_lock(tmp_path):
    folder = jobs.create(COUNTING, Spec(3))
    first = runner.Runner(COUNTING, folder)
    assert jobs.locked(folder) and jobs.lock_holder(folder) == os.getpid()
    with pytest.raises(jobs.Busy, match="another process"):
        runner.Runner(COUNTING, folder)
    COUNTING.meta.update(folder, status="running")
    assert jobs.info(COUNTING, folder).status == "running"  # locked: someone trains it
    assert first.run().status == "finished"
    assert not jobs.locked(folder)  # released when the run ends
    COUNTING.meta.update(folder, status="running")  # as a process killed mid-run leaves it
    assert jobs.info(COUNTING, folder).status == "interrupted"
    assert runner.Runner(COUNTING, folder).run().status == "finished"


def test_a_pair_names_its_part_and_back():
    assert jobs.part_name(("tanh", "sgd")) == "tanh-sgd"
    assert jobs.part_pair("tanh-sgd") == ("tanh", "sgd")


def test_a_job_left_running_without_a_runner_reads_as_interrupted(tmp_path):
    folder = tmp_path / "job"
    assert jobs.status({"status": "running"}, folder, active=()) == "interrupted"
    assert jobs.status({"status": "queued"}, folder, active={"job"}) == "queued"
    assert jobs.status({"status": "cancelled"}, folder, active=()) == "cancelled"
    assert jobs.status({}, folder, active=()) == "created"


def test_progress_eta_follows_the_pace_so_far():
    assert runner.Progress("running", 25, 100, 10.0).eta == pytest.approx(30.0)
    assert runner.Progress("running", 0, 100, 1.0).eta is None
    assert runner.Progress("running", 0, 0, 1.0).fraction == 1.0
    assert runner.Progress("running", 25, 100, 10.0).describe() == (
        "25 of 100 optimizer steps (25%) · 10 s elapsed · about 30 s left")
    assert runner.format_seconds(75.2) == "1 min 15 s"
    assert runner.format_seconds(None) == "…"


def test_a_job_records_its_owner_and_open_or_create_keeps_it(tmp_path):
    folder = jobs.create(COUNTING, Spec(1), owner="abc")
    assert jobs.info(COUNTING, folder).owner == "abc"
    assert jobs.info(COUNTING, jobs.create(COUNTING, Spec(1))).owner is None
    COUNTING.meta.update(folder, owner=["not", "a", "token"])  # a damaged field: nobody's
    assert jobs.info(COUNTING, folder).owner == ""


def test_a_listing_reads_a_jobs_files_again_only_when_they_change(tmp_path, monkeypatch):
    folder = jobs.create(COUNTING, Spec(3))
    reads = []
    units_done = Counting.units_done
    monkeypatch.setattr(Counting, "units_done",
                        lambda self, *a: reads.append(1) or units_done(self, *a))
    assert [j.done for j in jobs.list_jobs(COUNTING)] == [0] and len(reads) == 1
    jobs.list_jobs(COUNTING)
    assert len(reads) == 1  # nothing changed: nothing read
    (folder / "done.txt").write_text("xx")
    assert [j.done for j in jobs.list_jobs(COUNTING)] == [2] and len(reads) == 2
    COUNTING.meta.update(folder, status="running")
    assert jobs.list_jobs(COUNTING)[0].status == "interrupted" and len(reads) == 3
    with jobs.JobLock(folder):  # the status is live: a lock alone needs no new read
        assert jobs.list_jobs(COUNTING)[0].status == "running"
    assert len(reads) == 3
