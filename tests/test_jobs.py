"""minidl.jobs: saved jobs of any kind in the store — created, listed, sized, locked and run."""

import os
from dataclasses import dataclass

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

    def describe(self, spec):
        return f"count to {spec.n}"

    def parts(self, spec):
        return ["only"]

    def units(self, spec, part):
        return spec.n

    def steps(self, spec, part, job=None):
        return spec.n - (0 if job is None else self.done_by_part(spec, job)[part])

    def done_by_part(self, spec, job):
        return {"only": len(job.rows("only"))}

    def tasks(self, spec, part, job):
        first = self.done_by_part(spec, job)[part]
        return [tasks.Task(part, spec.n - first, count, (first, spec.n), units=spec.n - first)]

    def save(self, spec, part, job, result):
        job.add({"only": result}, len(result))

    def read_folder(self, spec, folder):
        return {"only": [{"i": i} for i in range(len((folder / "done.txt").read_text()))]
                if (folder / "done.txt").exists() else []}


def count(first, n, progress=None, resume=None, pause_after=None):
    """Count from ``first`` to ``n``, one unit (a step) at a time."""
    for i in range(first, n):
        if progress is not None and progress(i + 1 - first, n - first) is False:
            raise runner.pop.Cancelled()
    return [{"i": i} for i in range(first, n)]


COUNTING = Counting()


def test_new_jobs_get_folders_of_their_own_and_are_listed_newest_first(tmp_path):
    first = jobs.create(COUNTING, Spec(1))
    second = jobs.create(COUNTING, Spec(2))
    assert first.parent == second.parent == tmp_path / "counts" and first != second
    assert first.is_dir() and (tmp_path / "minidl.db").is_file()  # one store per results root
    helpers.set_job(first, created="2000-01-01T00:00:00+00:00")
    listed = jobs.list_jobs(COUNTING)
    assert [i.folder for i in listed] == [second, first]
    assert (listed[0].done, listed[0].total, listed[0].status) == (0, 2, "created")
    assert listed[0].name == second.name and listed[0].title == "count to 2"
    with pytest.raises(ValueError, match="holds another job"):
        jobs.create(COUNTING, Spec(3), first)


def test_folders_of_an_older_minidl_are_imported_once_and_damaged_ones_say_why(tmp_path):
    root = tmp_path / "counts"
    (root / "no-meta").mkdir(parents=True)
    for name, text in (("broken", "{"), ("a-list", "[]"), ("bad-spec", '{"n": "x"}'),
                       ("good", '{"n": 3, "status": "cancelled", "owner": ["a"]}')):
        (root / name).mkdir()
        (root / name / "job.json").write_text(text)
    (root / "good" / "done.txt").write_text("xx")  # two units saved
    listed = {i.folder.name: i for i in jobs.list_jobs(COUNTING)}
    assert set(listed) == {"broken", "a-list", "bad-spec", "good"}  # "no-meta" holds nothing
    good = listed.pop("good")
    assert (good.status, good.done, good.total, good.owner) == ("cancelled", 2, 3, "")
    assert good.kept("unit") == "2 of 3 units saved" and good.resumable
    assert all(i.status == "damaged" and i.spec is None and not i.resumable
               for i in listed.values())
    assert listed["a-list"].error == "job.json holds a list, not an object of settings"
    assert listed["bad-spec"].error == "job.json: n must be an integer"
    assert listed["broken"].error.startswith("job.json is not valid JSON")
    (root / "good" / "done.txt").write_text("xxx")  # once imported, the store is what counts
    assert {i.folder.name: i.done for i in jobs.list_jobs(COUNTING)}["good"] == 2
    assert runner.Runner(COUNTING, root / "good").run().done == 1


def test_a_runner_trains_what_is_missing_and_an_estimate_counts_steps_against_the_cap(
        monkeypatch):
    folder = jobs.create(COUNTING, Spec(5))
    jobs.find(folder).add({"only": [{"i": 0}, {"i": 1}]}, 2)  # two units already saved
    progress = runner.Runner(COUNTING, folder).run()
    assert (progress.status, progress.done, progress.total) == ("finished", 3, 3)
    assert jobs.info(COUNTING, folder).done == 5
    assert jobs.read_meta(COUNTING, folder)["status"] == "finished"  # exported beside it
    assert jobs.estimate(COUNTING, Spec(5)).allowed
    assert jobs.estimate(COUNTING, Spec(5), folder).steps == 0  # nothing left to resume
    monkeypatch.setenv("MINIDL_STUDY_CAP", "4")
    assert not jobs.estimate(COUNTING, Spec(5)).allowed


@pytest.mark.parametrize("text, reason", [
    ("a,b\n1,x\n", "rows.csv: column seed is missing"),
    ("a,seed\n1,0\nabc,1\n", "rows.csv line 3: a='abc' is not a number"),
    ("a,seed\n1,-1\n", "rows.csv line 2: seed='-1' is not a whole number, 0 or more"),
    ("a,seed\n1,\n", "rows.csv line 2: seed='' is not a whole number, 0 or more"),
    ("a,seed\n1,99999999999999999999\n", "rows.csv line 2: seed='99999999999999999999' is not a"),
    ("a,seed,ok\n1,0,maybe\n", "rows.csv line 2: ok='maybe' is not true or false"),
    ("a,seed,score\n1,0,inf\n", "rows.csv line 2: score='inf' is not empty or a number from 0 to 1"),
    ("a,seed\n1,0,7,8\n", "rows.csv line 2: 4 values under 2 column names"),
])
def test_a_value_of_the_wrong_kind_is_damage_naming_file_line_and_value(tmp_path, text, reason):
    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(jobs.Damaged, match=reason.replace("(", r"\(")):
        jobs.read_rows(path, {"a": "number", "seed": "count"}, {"ok": "flag", "score": "score"})


def test_a_table_from_the_store_is_checked_as_a_file_is():
    rows = [{"a": 1.5, "seed": 0, "ok": True}, {"a": None, "seed": 2, "ok": False}]
    table = jobs.check_columns(jobs.frame(rows), "the rows", {"a": "number", "seed": "count"},
                               {"ok": "flag"})
    assert table["seed"].tolist() == [0, 2] and table["ok"].tolist() == [True, False]
    with pytest.raises(jobs.Damaged, match="the rows line 2: seed='x' is not a whole number"):
        jobs.check_columns(jobs.frame([*rows, {"a": 1, "seed": "x"}][1:]), "the rows",
                           {"seed": "count"})


def test_a_folder_a_binary_file_or_a_torn_line_in_place_of_a_table(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\x00\xff\xfe\n")
    with pytest.raises(jobs.Damaged, match="dir.csv is a folder"):
        jobs.read_rows(tmp_path / "dir.csv", {})
    with pytest.raises(jobs.Damaged, match="bin.csv is not a text file"):
        jobs.read_rows(tmp_path / "bin.csv", {})
    (tmp_path / "empty.csv").write_text("")
    assert jobs.read_rows(tmp_path / "empty.csv", {"seed": "count"}).empty
    (tmp_path / "torn.csv").write_text("a,seed\n1,0\n3")  # a writer killed mid-line
    assert len(jobs.read_rows(tmp_path / "torn.csv", {"seed": "count"})) == 1
    assert jobs.read_rows(tmp_path / "missing.csv", {"seed": "count"}).empty


def test_a_second_runner_on_a_job_is_refused_while_the_first_holds_its_lock():
    folder = jobs.create(COUNTING, Spec(3))
    first = runner.Runner(COUNTING, folder)
    assert jobs.locked(folder) and jobs.lock_holder(folder) == os.getpid()
    with pytest.raises(jobs.Busy, match="another process"):
        runner.Runner(COUNTING, folder)
    helpers.set_job(folder, status="running")
    assert jobs.info(COUNTING, folder).status == "running"  # locked: someone trains it
    assert first.run().status == "finished"
    assert not jobs.locked(folder)  # released when the run ends
    helpers.set_job(folder, status="running")  # as a process killed mid-run leaves it
    assert jobs.info(COUNTING, folder).status == "interrupted"
    assert jobs.info(COUNTING, folder, active={jobs.find(folder).id}).status == "running"
    with jobs.lock(folder):  # another process trains it: the status is live
        assert jobs.list_jobs(COUNTING)[0].status == "running"
    assert runner.Runner(COUNTING, folder).run().status == "finished"


def test_a_pair_names_its_part_and_back():
    assert jobs.part_name(("tanh", "sgd")) == "tanh-sgd"
    assert jobs.part_pair("tanh-sgd") == ("tanh", "sgd")


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
    assert jobs.open_or_create(COUNTING, Spec(1), folder) == folder
    assert jobs.info(COUNTING, folder).owner == "abc"
    with pytest.raises(ValueError, match="holds another count"):
        jobs.open_or_create(COUNTING, Spec(2), folder)
    elsewhere = jobs.open_or_create(COUNTING, Spec(2), tmp_path / "out")
    assert elsewhere == tmp_path / "out" and jobs.info(COUNTING, elsewhere).total == 2


def test_a_listing_reads_the_store_not_the_jobs_rows(monkeypatch):
    for n in range(5):
        jobs.find(jobs.create(COUNTING, Spec(n + 1))).add({"only": [{"i": 0}]}, 1)
    reads = []
    monkeypatch.setattr(Counting, "done_by_part", lambda *a: reads.append(1))
    assert sorted(j.done for j in jobs.list_jobs(COUNTING)) == [1] * 5 and not reads


def test_a_folder_another_process_imports_first_is_read_not_a_store_error(tmp_path,
                                                                          monkeypatch):
    # two sessions of a cold server open the same page: both look a folder up, find no job
    # and import it; the second's insert meets the first's row
    folder = tmp_path / "elsewhere" / "good"
    folder.mkdir(parents=True)
    (folder / "job.json").write_text('{"n": 2, "status": "finished"}')
    (folder / "done.txt").write_text("xx")
    imports = jobs.saved.import_folder

    def raced(kind, path):
        imports(kind, path)  # the other process, between our lookup and our import
        imports(kind, path)
    monkeypatch.setattr(jobs.saved, "import_folder", raced)
    info = jobs.info(COUNTING, folder)
    assert (info.status, info.done, info.total) == ("finished", 2, 2)
