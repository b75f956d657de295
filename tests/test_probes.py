"""The outside tester's probes of a public server and the command line (issue 24), kept as
tests: each finding is a test here, with hypothesis properties for the readers of saved
files and the parsing of numbers from URLs, forms and flags."""

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import helpers
import pytest
import sqlalchemy as sa
from helpers import wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from minidl import Config, Run, hparams, jobs
from minidl.experiments import sweeps
from minidl.jobs import limits, retention, runner, scheduler
from minidl.jobs.store import ROWS
from ui import jobs as job_widgets
from ui.background import Slots, Trainer

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


# ---------------------------------------------------------------- 5. a training place, a turn

SMALL = dict(n_train=40, n_test=20, hidden=(8, 8), batch_size=4, epochs=100_000)


@pytest.mark.slow  # ~11 s: two turns of training
def test_a_training_place_is_held_one_turn_while_others_wait_then_they_go_first():
    now = [0.0]
    slots = Slots(1, turn=300, clock=lambda: now[0])
    first, second = (Trainer(Run(Config(**SMALL)), slots, clock=lambda: now[0],
                             idle_seconds=1e9) for _ in range(2))
    first.train()
    wait_until(lambda: first.run.epoch >= 1)
    now[0] = 1000.0  # alone, it trains on past its turn
    time.sleep(0.6)
    assert first.state == "training"
    second.train()
    wait_until(lambda: second.state == "waiting")
    assert slots.position(second) == 1
    now[0] = 1301.0  # a turn has passed since anyone waited … since it took its place
    wait_until(lambda: second.run.epoch >= 1)
    assert first.state == "idle" and first.stop_reason == "turn"
    first.train()  # queues again, behind
    wait_until(lambda: first.state == "waiting")
    assert slots.position(first) == 1 and second.state == "training"
    second.close()
    wait_until(lambda: first.state == "training")
    first.close()


def test_a_sessions_training_budget_is_bounded():
    now = [0.0]
    trainer = Trainer(Run(Config(**SMALL)), budget=60, clock=lambda: now[0], idle_seconds=1e9)
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 1)
    now[0] = 61.0
    wait_until(lambda: trainer.state == "idle")
    assert trainer.stop_reason == "budget" and trainer.spent() and not trainer.trainable()
    trainer.train()  # refused: nothing starts
    assert trainer.state == "idle"
    trainer.replace(Run(Config(**SMALL)))  # Reset keeps the session's budget spent
    assert not trainer.trainable()


def test_the_public_defaults_bound_a_turn_and_a_session_to_minutes(monkeypatch):
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    assert 1 <= limits.get("MINIDL_TRAINING_TURN_MINUTES") <= 15
    assert 1 <= limits.get("MINIDL_SESSION_TRAINING_MINUTES") <= 120
    at = helpers.open_app({})
    t = at.session_state["pg_trainer"]
    assert t.budget == 60 * limits.get("MINIDL_SESSION_TRAINING_MINUTES")
    assert t.slots.turn == 60 * limits.get("MINIDL_TRAINING_TURN_MINUTES")


# ---------------------------------------------------------------- 6. a visitor, not a tab

def _cookie(token: bytes) -> str:
    from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string
    return generate_xsrf_token_string(token)  # Streamlit's own cookie, masked afresh


def test_a_browser_is_one_visitor_whatever_the_mask_of_its_cookie():
    one, other = os.urandom(16), os.urandom(16)
    assert job_widgets.browser_token(_cookie(one)) == job_widgets.browser_token(_cookie(one))
    assert job_widgets.browser_token(_cookie(one)) != job_widgets.browser_token(_cookie(other))
    assert one.hex() not in job_widgets.browser_token(_cookie(one))
    for junk in (None, "", "2|zz|yy|1", "2||", "x" * 5000, "2|00|00|1|1"):
        assert job_widgets.browser_token(junk) is None


def _tab(monkeypatch, cookie: str) -> AppTest:
    """A Cross-validation tab of the browser that sends ``cookie``."""
    monkeypatch.setattr(job_widgets, "browser_token",
                        lambda _: hashlib.sha256(cookie.encode()).hexdigest()[:32])
    return helpers.open_app({}, "pages/cross_validation.py")


def _launch(at: AppTest) -> AppTest:
    at.multiselect(key="cv_activations").set_value(["tanh"])
    at.multiselect(key="cv_optimizers").set_value(["sgd"])
    at.number_input(key="cv_folds").set_value(2)
    at.number_input(key="cv_epochs").set_value(100)
    for name, value in (("lr", "0.1"), ("momentum", "0"), ("batch_size", "1")):
        at.text_input(key=f"cv_grid_sgd_{name}").set_value(value)
    at.run()
    return at.button(key="cv_launch").click().run()


def test_the_jobs_quota_counts_a_browser_not_a_tab(monkeypatch):
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    first = _launch(_tab(monkeypatch, "browser A"))
    assert not first.exception and first.get("progress")
    second = _tab(monkeypatch, "browser A")  # another tab of the same browser
    assert second.button(key="cv_launch").disabled
    assert "You already have 1 job" in second.button(key="cv_launch").help
    other = _launch(_tab(monkeypatch, "browser B"))
    assert not other.exception and other.get("progress")  # another browser: in line
    line = job_widgets.scheduler()
    for name in line.active():
        line.cancel(name)
    wait_until(lambda: not line.active())


def test_a_waiting_job_of_a_visitor_who_left_gives_up_its_place(tmp_path):
    line = scheduler.Scheduler(running=1, waiting=3, per_owner=1, nice=0)
    here = threading.Event()
    here.set()
    try:
        folders = [jobs.create(sweeps.SWEEP, _long_sweep(), tmp_path / f"s{i}") for i in (0, 1)]
        running = line.submit(sweeps.SWEEP, folders[0], "a")
        waiting = line.submit(sweeps.SWEEP, folders[1], "b", present=here.is_set)
        wait_until(lambda: running.status == "running")
        assert waiting.position == 1
        here.clear()  # every tab of visitor b closed
        wait_until(lambda: not waiting.active)
        assert waiting.status == "cancelled" and line.refusal("c") is None
        assert "left" in jobs.info(sweeps.SWEEP, folders[1]).error
    finally:
        line.shutdown()


def _long_sweep() -> sweeps.SweepSpec:
    return sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [1]}},
                            folds=2, epochs=500, n_train=200)


# ---------------------------------------------------------------- 7. the command line's jobs

def test_on_a_public_server_a_command_line_job_is_read_only_to_visitors(monkeypatch):
    folder = jobs.create(sweeps.SWEEP, _long_sweep())  # owner None: the command line's
    helpers.set_job(folder, status="cancelled")
    at = helpers.open_app({}, "pages/cross_validation.py")
    assert at.button(key="cv_resume")  # on your own machine, it is yours
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    at = helpers.open_app({}, "pages/cross_validation.py")
    assert not [b for b in at.button if b.key == "cv_resume"]
    assert any("command line" in c.value for c in at.caption)


# ---------------------------------------------------------------- 8. every spelling of a path

@pytest.mark.parametrize("spelling", ["link", "dotdot", "slash"])
def test_path_hiding_covers_every_spelling_of_the_results_folder(monkeypatch, tmp_path,
                                                                  spelling):
    real = tmp_path / "real" / "results"
    real.mkdir(parents=True)
    given = {"link": tmp_path / "link", "dotdot": tmp_path / "real" / ".." / "real" / "results",
             "slash": f"{real}/"}[spelling]
    if spelling == "link":
        given.symlink_to(real)
    monkeypatch.setenv(jobs.RESULTS_ENV, str(given))
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    for text in (f"{given}/sweeps/x", f"{real}/sweeps/x", f"{os.path.abspath(given)}/sweeps"):
        hidden = job_widgets.hide_paths(text)
        assert str(tmp_path) not in hidden and hidden.startswith("<results>"), (text, hidden)
    app = Path(job_widgets.__file__).parent.parent
    assert str(app) not in job_widgets.hide_paths(f"{app}/pages/x.py")
    at = helpers.open_app({}, "pages/cross_validation.py")
    texts = [str(e.help or "") for e in at.selectbox] + [c.value for c in at.code]
    assert not any(str(tmp_path) in t for t in texts)


# ---------------------------------------------------------------- 10. limits in their range

@pytest.mark.parametrize("name, bad", [("MINIDL_JOB_NICE", "1e30"), ("MINIDL_JOB_NICE", "20"),
                                       ("MINIDL_JOB_WORKERS", "1e9"),
                                       ("MINIDL_KEEP_DAYS", "1e300")])
def test_a_limit_past_its_real_range_is_refused_at_start_up(monkeypatch, name, bad):
    monkeypatch.setenv(name, bad)
    [problem] = limits.problems()
    assert name in problem and "is not a whole number in" in problem
    at = AppTest.from_file(helpers.APP, default_timeout=30)
    at.run()
    assert not at.exception and "settings are wrong" in at.error[0].value


# ---------------------------------------------------------------- 11. a killed trainer

@pytest.mark.slow
def test_a_run_whose_training_process_died_says_so_and_only_starts_over():
    trainer = Trainer(Run(Config(**SMALL)))
    trainer.train()
    wait_until(lambda: trainer.run.epoch >= 2)
    # its own process (another test's may still be ending in this worker)
    child = trainer.process
    assert child is not None and child in multiprocessing.active_children()
    os.kill(child.pid, signal.SIGKILL)
    wait_until(lambda: trainer.state == "idle")
    assert trainer.stop_reason == "error" and trainer.broken and not trainer.trainable()
    epoch = trainer.run.epoch
    trainer.train()  # refused, not a silently different run
    trainer.step()
    assert trainer.state == "idle" and trainer.run.epoch == epoch
    trainer.replace(Run(Config(**SMALL)))  # Reset: starts over
    assert trainer.trainable()
    trainer.step()
    wait_until(lambda: trainer.run.epoch == 1 and trainer.state == "idle")


def test_the_playground_disables_train_and_says_why_after_its_process_died():
    at = helpers.open_app({"n_train": "60", "n_test": "60"})
    t = at.session_state["pg_trainer"]
    t.broken, t.stop_reason = True, "error"
    at.run()
    assert at.button(key="pg_train").disabled and at.button(key="pg_step").disabled
    assert any("cannot go on exactly" in e.value for e in at.error)
    at.button(key="pg_reset").click().run()
    assert not at.button(key="pg_train").disabled


# ---------------------------------------------------------------- 12. no autolink

AUTOLINK = re.compile(r"(?i)(://|www\.|[\w.+-]@[\w-]|mailto:|xmpp:)")


@given(st.text(alphabet=st.sampled_from("ab.:/@wWmMxX-_+ \\*[]()lto"), max_size=60)
       | st.emails() | st.just("mail EVIL@Example.COM at WWW.EVIL.ORG, MAILTO:a@b, xmpp:c"))
def test_text_from_a_file_never_becomes_a_link(text):
    shown = re.sub(r"\\(.)", r"\1", job_widgets.plain(text, limit=1000))  # unescaped
    assert not AUTOLINK.search(shown), shown
    assert shown.replace("\u200b", "") == " ".join(text.split())  # nothing else changed


# ---------------------------------------------------------------- 13. retention and links

def test_retention_never_walks_or_deletes_through_a_link(monkeypatch, tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "big.bin").write_bytes(b"x" * (3 << 20))
    folder = helpers.tiny_saved_sweep()
    shutil.rmtree(folder)
    folder.symlink_to(outside)  # the job's folder replaced by a link
    helpers.set_job(folder, updated="2000-01-01T00:00:00")
    assert retention.folder_bytes(folder) == 0
    monkeypatch.setenv("MINIDL_KEEP_JOBS", "1")
    helpers.tiny_saved_sweep()  # a newer one: the linked job is past the limit
    assert folder in jobs.prune([sweeps.SWEEP])
    assert not folder.exists() and (outside / "deep" / "big.bin").stat().st_size == 3 << 20


@pytest.mark.slow
def test_a_waiting_playground_says_its_place_in_line_and_the_turn(monkeypatch):
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    monkeypatch.setenv("MINIDL_TRAINING_SESSIONS", "1")  # a class is 50; here, a full server
    query = {"n_train": "60", "n_test": "60", "epochs": "10000"}
    first, second = helpers.open_app(query), helpers.open_app(query)
    first.button(key="pg_train").click().run()
    wait_until(lambda: first.session_state["pg_trainer"].state == "training")
    second.button(key="pg_train").click().run()
    t = second.session_state["pg_trainer"]
    wait_until(lambda: t.state == "waiting")
    second.run()
    [line] = [w.value for w in second.warning if "Waiting for a free place" in w.value]
    assert "you are 1st in line" in line and "at most 5 minutes while others wait" in line
    first.session_state["pg_trainer"].close()
    wait_until(lambda: t.state == "training")
    t.close()


def test_a_job_whose_folder_was_deleted_meanwhile_exports_into_it_again():
    folder = jobs.create(sweeps.SWEEP, sweeps.SweepSpec(
        ("tanh",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [50]}}, folds=2, epochs=1,
        n_train=100))
    shutil.rmtree(folder)
    assert runner.Runner(sweeps.SWEEP, folder).run().status == "finished"
    assert (folder / "tanh-sgd.csv").stat().st_size > 0
