"""The outside tester's probes of a public server and the command line (issue 24), kept as
tests: each finding is a test here, with hypothesis properties for the readers of saved
files and the parsing of numbers from URLs, forms and flags."""

import json
import os
import threading
import time
from pathlib import Path

import helpers
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from minidl import hparams, jobs
from minidl.experiments import sweeps
from minidl.jobs import scheduler
from minidl.jobs.store import ROWS

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)

NINES = "9" * 400  # 400 digits: an int too large for a float, under Python's 4,300-digit cap
HUGE = [NINES, "-" + NINES, "9" * 5000, "1" + "0" * 310, "1e999999"]
NUMERIC = [n for n, s in hparams.TABLE.items() if s.kind in ("int", "float")]


# ---------------------------------------------------------------- 1. numbers of any length

def test_every_numeric_setting_has_both_bounds():
    for name in NUMERIC:
        s = hparams.setting(name)
        assert s.low is not None and s.high is not None, name


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("text", HUGE)
def test_a_number_of_any_length_is_a_value_error_naming_the_setting(name, text):
    with pytest.raises(ValueError, match=rf"Invalid .*{name}.*expected"):
        hparams.parse(name, text)
    with pytest.raises(ValueError, match=name):
        hparams.parse_values(name, f"1, {text}")


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC),
       text=st.one_of(st.text(max_size=60), st.from_regex(r"-?[0-9]{1,600}(\.[0-9]*)?(e-?[0-9]{1,7})?",
                                                          fullmatch=True)))
def test_parsing_any_text_gives_a_value_in_range_or_a_value_error(name, text):
    s = hparams.setting(name)
    try:
        value = hparams.parse(name, text)
    except ValueError:
        return
    assert s.low <= value <= s.high


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(NUMERIC),
       value=st.one_of(st.integers(), st.integers(min_value=10**300, max_value=10**5000),
                       st.floats(allow_nan=True, allow_infinity=True)))
def test_checking_any_number_gives_a_value_in_range_or_a_value_error(name, value):
    s = hparams.setting(name)
    try:
        checked = hparams.check(name, value)
    except ValueError:
        return
    assert s.low <= checked <= s.high


def test_a_values_field_is_refused_by_its_length_before_it_is_read():
    text = "0.1, " * 2_000_000  # 10 MB pasted in a grid field
    began = time.process_time()
    with pytest.raises(ValueError, match="10,000,000 characters"):
        hparams.parse_values("lr", text)
    assert time.process_time() - began < 0.5 * _seconds_to_split(text)


def _seconds_to_split(text: str) -> float:
    began = time.process_time()
    [t.strip() for t in text.split(",")]
    return time.process_time() - began


@pytest.mark.parametrize("query", [{"lr": NINES}, {"n_train": NINES}, {"init_seed": NINES},
                                   {"gain": NINES}, {"epochs": NINES}])
def test_a_playground_link_with_a_huge_number_is_a_warning(query):
    at = helpers.open_app(query)
    [name] = query
    assert at.warning and at.warning[0].value.startswith("1 setting in this link")
    assert f"{name}=999" in at.code[0].value and ": not a" in at.code[0].value


@pytest.mark.parametrize("query", [{"target_acc": NINES}, {"preset": "custom",
                                                            "contestants": f"lr={NINES}"}])
def test_a_compare_link_with_a_huge_number_is_a_warning(query):
    at = helpers.open_app(query, "pages/compare.py")
    assert (at.warning or at.error) and "9999" in "\n".join(c.value for c in at.code)


def test_a_huge_number_in_a_cross_validation_grid_is_a_message():
    at = helpers.open_app({}, "pages/cross_validation.py")
    at.text_input(key="cv_grid_adam_lr").set_value(f"0.1, {NINES}").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["These settings cannot run yet:"]
    assert "expected" in at.code[0].value and at.button(key="cv_launch").disabled


def test_a_huge_grid_field_is_refused_by_its_length():
    at = helpers.open_app({}, "pages/cross_validation.py")
    at.text_input(key="cv_grid_adam_lr").set_value("0.1, " * 200_000).run()
    assert not at.exception and "Invalid learning rate" in at.code[0].value


@pytest.mark.parametrize("args", [
    ["train", "--lr", NINES], ["train", "--epochs", NINES], ["train", "--gain", NINES],
    ["sweep", "--seed", NINES], ["sweep", "--grid", f"lr={NINES}"], ["sweep", "--lr", NINES],
    ["sweep", "--epochs", "1" + "0" * 30], ["reproduce", "--runs", NINES],
    ["sweep", "--folds", NINES], ["train", "--every", NINES]])
def test_a_huge_number_on_the_command_line_is_a_one_line_error(run_cli, args):
    result = run_cli(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected" in result.stderr or "at most" in result.stderr, result.stderr


# ---------------------------------------------------------------- 2–4. any saved file

def _sweep_folders() -> tuple[Path, Path]:
    """Two finished tiny sweeps (one to damage, one that must still show)."""
    return helpers.tiny_saved_sweep(), helpers.tiny_saved_sweep()


def _cv_page() -> AppTest:
    return helpers.open_app({}, "pages/cross_validation.py")


def _edit_spec(folder: Path, **changes) -> None:
    job = jobs.find(folder)
    spec = json.loads(job.store.job(id=job.id)["spec"])
    job.store.update(job.id, spec=json.dumps({**spec, **changes}))


@pytest.mark.parametrize("changes", [{"seed": 2**64}, {"epochs": 10**30},
                                     {"data_seed": -1}, {"folds": 10**400}])
def test_a_saved_spec_with_a_huge_integer_is_a_damaged_job_not_a_crash(changes):
    bad, good = _sweep_folders()
    _edit_spec(bad, **changes)
    at = _cv_page()
    assert jobs.info(sweeps.SWEEP, bad).status == "damaged"
    assert jobs.info(sweeps.SWEEP, good).status == "finished"
    assert not at.exception and at.dataframe  # the overview and the good sweep show


def test_a_saved_row_with_a_huge_integer_is_a_message_not_a_crash():
    bad, good = _sweep_folders()
    job = jobs.find(bad)
    with job.store.begin() as c:
        row = c.execute(sa.select(ROWS).where(ROWS.c.job == job.id)).mappings().first()
        values = {**json.loads(row["data"]), "seed": 2**64, "epochs": 10**30, "n": 2**70}
        c.execute(sa.update(ROWS).where(ROWS.c.id == row["id"]).values(data=json.dumps(values)))
    at = _cv_page()
    assert not at.exception and at.dataframe
    assert jobs.info(sweeps.SWEEP, bad).status == "damaged"


DEEP = "[" * 100_000 + "]" * 100_000


def _folder_with(tmp: Path, meta: str | None = None) -> Path:
    folder = jobs.results_root() / sweeps.SWEEP.folder / "handmade"
    folder.mkdir(parents=True)
    if meta is not None:
        (folder / sweeps.SWEEP.meta_name).write_text(meta)
    return folder


def test_a_deeply_nested_meta_file_is_a_damaged_job_on_the_page_and_the_command_line(
        run_cli, tmp_path):
    folder = _folder_with(tmp_path, DEEP)
    at = _cv_page()
    assert not at.exception
    assert jobs.info(sweeps.SWEEP, folder).status == "damaged"
    for args in (["sweep", "--out", str(folder)], ["reproduce", "--settings", str(folder)],
                 ["run-job", "sweep", str(folder)]):
        result = run_cli(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "error:" in result.stderr, result.stderr


def test_a_deeply_nested_spec_or_row_in_the_store_is_damaged():
    bad, good = _sweep_folders()
    job = jobs.find(bad)
    job.store.update(job.id, spec=DEEP)
    assert jobs.info(sweeps.SWEEP, bad).status == "damaged"
    job = jobs.find(good)
    with job.store.begin() as c:
        c.execute(sa.update(ROWS).where(ROWS.c.job == job.id).values(data=DEEP))
    assert jobs.info(sweeps.SWEEP, good).status == "damaged"
    assert not _cv_page().exception


def _in_time(call, seconds: float = 20.0):
    """``call()``'s result, or a failure if it has not returned within ``seconds`` (a hang)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "it hangs"
    return out[0]


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["meta", "csv", "log"])
def test_a_named_pipe_in_a_results_folder_never_hangs_a_page(where):
    folder = helpers.tiny_saved_sweep()
    if where == "meta":  # a folder of an older minidl, to import
        folder = _folder_with(None)
        _fifo(folder / sweeps.SWEEP.meta_name)
    elif where == "csv":
        folder = _folder_with(None, (next(jobs.results_root().rglob("*/sweep.json"))
                                     ).read_text())
        _fifo(folder / "tanh-sgd.csv")
    else:
        _fifo(folder / ".log")
    at = _in_time(_cv_page)
    assert not at.exception
    assert _in_time(lambda: helpers.open_app({}, "pages/compare.py")).exception == []
    if where != "log":
        assert jobs.info(sweeps.SWEEP, folder).status == "damaged"


def test_a_named_pipe_as_a_running_jobs_lock_never_hangs_a_page():
    folder = helpers.tiny_saved_sweep()
    job = jobs.find(folder)
    job.store.update(job.id, status="running")
    lock = job.store._lock_dir / job.id
    lock.unlink(missing_ok=True)
    _fifo(lock)
    at = _in_time(_cv_page)
    assert not at.exception
    assert jobs.info(sweeps.SWEEP, folder).status == "interrupted"
    with pytest.raises(jobs.Damaged, match="not a regular file"):
        with job.store.lock(job.id):
            pass


def test_a_named_pipe_as_the_points_file_is_a_one_line_error(run_cli, tmp_path):
    pipe = _fifo(tmp_path / "fifo.csv")
    result = _in_time(lambda: run_cli("train", "--points", str(pipe), "--epochs", "1"))
    assert result.returncode == 2 and "fifo.csv" in result.stderr
    assert "not a regular file" in result.stderr and result.stderr.count("\n") == 1


def test_a_job_process_log_that_is_a_link_is_replaced_not_written_through(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    folder = helpers.tiny_saved_sweep()
    (folder / ".log").symlink_to(target)
    process = scheduler._spawn(sweeps.SWEEP, folder, nice=0, workers=1)
    process.wait(timeout=120)
    assert target.read_text() == "keep me" and not (folder / ".log").is_symlink()
