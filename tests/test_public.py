"""A public demo: the server's limits, memory-bounded jobs, one job per visitor, retention."""

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import helpers
import pytest
import torch
from streamlit.testing.v1 import AppTest

from minidl import data, hparams, jobs
from minidl.engine import fit as pop
from minidl.experiments import cv, studies, sweeps
from minidl.jobs import limits

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
GB = 1 << 30


# ---------------------------------------------------------------- the limits table

def test_limits_have_a_local_and_a_public_default_and_the_environment_wins(monkeypatch):
    assert limits.get("MINIDL_KEEP_DAYS") is None and not limits.public()
    assert limits.get("MINIDL_SWEEP_CAP") is None  # on your own machine: no work caps
    assert limits.get("MINIDL_JOB_WORKERS") == 2  # both cores
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    assert limits.public() and limits.get("MINIDL_KEEP_DAYS") == 7
    assert limits.get("MINIDL_JOB_WORKERS") == 1  # a core left to the visitors' Playgrounds
    assert limits.get("MINIDL_SWEEP_CAP") == 6_000_000
    monkeypatch.setenv("MINIDL_SWEEP_CAP", "2e6")
    assert limits.get("MINIDL_SWEEP_CAP") == 2_000_000
    monkeypatch.setenv("MINIDL_KEEP_DAYS", "none")
    assert limits.get("MINIDL_KEEP_DAYS") is None


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "lots", "0", "1.5", "-3", "1e400",
                                 "x" * 5000])
def test_a_bad_limit_is_a_clear_message_naming_its_variable(monkeypatch, bad):
    monkeypatch.setenv("MINIDL_SWEEP_CAP", bad)
    with pytest.raises(ValueError, match=r"\$MINIDL_SWEEP_CAP=.* is not a whole number in \[1, "):
        limits.get("MINIDL_SWEEP_CAP")
    [problem] = limits.problems()
    assert len(problem) < 150  # a 5,000-character value is cut


def test_the_app_starts_with_a_clear_message_for_a_bad_limit(monkeypatch):
    monkeypatch.setenv("MINIDL_SWEEP_CAP", "inf")
    monkeypatch.setenv("MINIDL_KEEP_MB", "**lots**")
    for page in (None, "pages/compare.py", "pages/cross_validation.py", "pages/reproduce.py"):
        at = AppTest.from_file(APP, default_timeout=30)
        if page:
            at.switch_page(page)
        at.run()
        assert not at.exception
        assert "settings are wrong" in at.error[0].value
        assert "$MINIDL_SWEEP_CAP='inf'" in at.code[0].value
        assert "'**lots**'" in at.code[0].value  # as plain text, not Markdown
        assert not at.button and not at.title  # no page ran


def test_the_readme_deploy_section_lists_every_limit():
    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploy"):]
    deploy = deploy[:deploy.find("\n## ", 4)]
    for name in (limits.PUBLIC_ENV, *limits.TABLE):
        assert f"`{name}`" in deploy, name


# ---------------------------------------------------------------- memory

def test_populations_in_chunks_give_the_same_results():
    X, y = data.disk(500, seed=0)
    members = [pop.Member({**cv.complete({"batch_size": b, "lr": lr}), "activation": "tanh"},
                          torch.arange(400), torch.arange(400, 500), seed=i)
               for i, (b, lr) in enumerate([(20, 0.01), (20, 0.1), (400, 0.1), (20, 3.0),
                                            (400, 1.0), (20, 0.05)])]
    whole = pop.fit(X, y, members, cv.SIZES, 3, history=True)
    chunks = pop.fit(X, y, members, cv.SIZES, 3, history=True, max_population=2)
    assert whole[3].diverged and chunks[3].diverged
    for a, b in zip(whole, chunks):
        assert a.diverged == b.diverged
        assert (a.eval_acc == b.eval_acc and a.train_loss_history == b.train_loss_history) \
            or a.diverged


def test_the_population_size_follows_the_job_memory(monkeypatch):
    member = pop.Member(cv.complete({}), torch.arange(800), torch.arange(200), seed=0)
    monkeypatch.setenv("MINIDL_JOB_MEMORY_MB", "100")
    small = pop.population_size([member], cv.SIZES, limits.job_memory())
    monkeypatch.setenv("MINIDL_JOB_MEMORY_MB", "400")
    assert pop.population_size([member], cv.SIZES, limits.job_memory()) == pytest.approx(
        4 * small, abs=4)
    assert small * pop.member_bytes(800, cv.SIZES) <= 100 << 20


PEAK = """
import sys, torch
sys.path.insert(0, {root!r})
torch.set_num_threads(1); torch.set_grad_enabled(False)
from minidl.experiments import cv
from minidl import data
from minidl.engine import fit as pop
def peak():
    return next(int(l.split()[1]) << 10 for l in open("/proc/self/status")
                if l.startswith("VmHWM"))
X, y = data.disk(1000, seed=0)
members = [pop.Member(cv.complete({{"batch_size": 5000}}), torch.arange(800),
                      torch.arange(800, 1000), seed=i) for i in range({m})]
pop.fit(X, y, members[:2], cv.SIZES, 1)  # code paths loaded
before = peak()
pop.fit(X, y, members, cv.SIZES, 2, max_population={m})
print(peak() - before)
"""


@pytest.mark.slow
def test_the_member_estimate_bounds_a_real_populations_peak_memory():
    m = 150
    out = subprocess.run([sys.executable, "-c", PEAK.format(root=str(ROOT), m=m)],
                         capture_output=True, text=True, check=True)
    measured = int(out.stdout.split()[-1])
    estimate = m * pop.member_bytes(800, cv.SIZES)
    assert measured <= estimate <= 4 * measured, (measured, estimate)


def pss(pid: int) -> int:
    """Proportional set size in bytes: shared library pages split among the processes
    mapping them — what the processes add up to in a container's memory."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) << 10 for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


# imports what the app's pages import, says so, and waits to be measured
FRESH_APP = ("import streamlit, altair, pandas, torch, minidl, ui.jobs, ui.training; "
             "print('imported', flush=True); input()")


def fresh_app_bytes() -> int:
    """The memory (``pss``) of a fresh process that has imported what the app's pages
    import: the server's own share before any visitor (this test process carries every
    earlier test's memory, so its own size would say little)."""
    with subprocess.Popen([sys.executable, "-c", FRESH_APP], cwd=ROOT, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().strip() == "imported"
        size = pss(process.pid)
        process.stdin.close()  # its input() ends, and so does it
    return size


def peak_while_training(at: AppTest, kind: jobs.Kind, seconds: float, cancel: str,
                        before: int) -> int:
    """Launched from ``at``: the peak of the job process's memory plus what this process
    grew by since ``before`` (its size then, in bytes) while the job trains for ``seconds``;
    then the page's ``cancel`` button stops it."""
    launched = {f.name for f in kind.root().iterdir()}
    # the one just launched (the README's studies in docs/results are listed too)
    [info] = [j for j in jobs.list_jobs(kind, active=launched) if j.folder.name in launched]
    deadline = time.monotonic() + 60
    while not jobs.locked(info.folder):
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)
    child = jobs.lock_holder(info.folder)
    peak, end = 0, time.monotonic() + seconds
    while time.monotonic() < end and jobs.locked(info.folder):
        peak = max(peak, pss(os.getpid()) - before + pss(child))
        time.sleep(0.1)
    assert jobs.locked(info.folder), jobs.info(kind, info.folder)  # trained the whole time
    at.run()
    at.button(key=cancel).click().run()
    while jobs.locked(info.folder):
        assert time.monotonic() < end + 60, "the job did not stop"
        time.sleep(0.05)
    return peak


@pytest.mark.slow
def test_the_worst_sweep_and_study_the_ui_allows_stay_under_a_gigabyte(monkeypatch):
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    server = fresh_app_bytes()
    before = pss(os.getpid())
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/cross_validation.py")
    at.run()
    # every pair, the most folds, a full-batch grid at the largest allowed size
    at.multiselect(key="cv_activations").set_value(list(hparams.ACTIVATIONS))
    at.multiselect(key="cv_optimizers").set_value(list(hparams.OPTIMIZERS))
    at.number_input(key="cv_folds").set_value(10)
    at.number_input(key="cv_epochs").set_value(1)
    lrs = ", ".join(f"{0.001 * (i + 1):g}" for i in range(hparams.MAX_GRID_VALUES))
    for optimizer in hparams.OPTIMIZERS:
        for name in hparams.optimizer_grid(optimizer):
            at.text_input(key=f"cv_grid_{optimizer}_{name}").set_value(
                {"lr": lrs, "batch_size": "5000"}.get(
                    name, hparams.format_value(hparams.TABLE[name].default)))
    at.text_input(key="cv_grid_sgd_momentum").set_value(  # 2,000 for Sigmoid + SGD (2 gains)
        ", ".join(f"{0.09 * i:g}" for i in range(10)))
    at.run()
    assert not at.exception and not at.button(key="cv_launch").disabled
    at.button(key="cv_launch").click().run()
    sweep_peak = server + peak_while_training(at, sweeps.SWEEP, 5, "cv_cancel", before)

    before = pss(os.getpid())
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/reproduce.py")
    at.run()
    at.number_input(key="rp_runs").set_value(100)
    at.number_input(key="rp_epochs").set_value(10).run()  # 2.3 million steps: under the cap
    assert not at.exception and not at.button[0].disabled
    next(b for b in at.button if b.label == "Run study").click().run()
    study_peak = server + peak_while_training(at, studies.STUDY, 5, "rp_cancel", before)
    print(f"peak memory, a fresh app process ({server / 2**20:.0f} MB) + what this process "
          f"grew by + the job's: sweep {sweep_peak / 2**20:.0f} MB, "
          f"study {study_peak / 2**20:.0f} MB")
    assert 0 < sweep_peak < GB and 0 < study_peak < GB


# ---------------------------------------------------------------- visitors and storage

@pytest.mark.slow
def test_a_visitor_has_one_job_at_a_time_on_a_public_server(monkeypatch):
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/cross_validation.py")
    at.run()
    assert "shared public demo" in " ".join(c.value for c in at.caption)
    at.multiselect(key="cv_activations").set_value(["tanh"])
    at.multiselect(key="cv_optimizers").set_value(["sgd"])
    at.text_input(key="cv_grid_sgd_batch_size").set_value("1")
    at.number_input(key="cv_epochs").set_value(50).run()
    at.button(key="cv_launch").click().run()
    help_text = at.selectbox(key="cv_sweep").help  # no server folder on a public server
    assert os.environ["MINIDL_RESULTS_DIR"] not in help_text and "<results>" in help_text
    assert at.button(key="cv_launch").disabled
    assert "You already have 1 job" in at.button(key="cv_launch").help
    other = AppTest.from_file(APP, default_timeout=60)
    other.switch_page("pages/reproduce.py")
    other.run()
    assert "The server is busy" not in str(other.info)  # one running, three may wait
    at.button(key="cv_cancel").click().run()


def test_problem_text_hides_the_servers_folders_in_public_mode(monkeypatch, tmp_path):
    from ui import jobs as job_widgets
    text = f"{tmp_path}/sweeps/x holds another sweep; {ROOT}/minidl/jobs.py"
    assert job_widgets.hide_paths(text) == text
    monkeypatch.setenv(limits.PUBLIC_ENV, "1")
    assert job_widgets.hide_paths(text) == ("<results>/sweeps/x holds another sweep; "
                                            "<app>/minidl/jobs.py")


def test_retention_deletes_the_oldest_stopped_jobs_first(monkeypatch):
    spec = sweeps.SweepSpec()
    folders = [jobs.create(sweeps.SWEEP, spec) for _ in range(5)]
    now = time.time()

    def days_ago(days: float) -> str:
        return datetime.fromtimestamp(now - days * 86400).astimezone().isoformat()
    for age, folder in zip((9, 5, 3, 2, 1), folders):  # days since each last changed
        helpers.set_job(folder, updated=days_ago(age))
    assert jobs.prune([sweeps.SWEEP], now=now) == []  # local default: keep everything
    monkeypatch.setenv("MINIDL_KEEP_DAYS", "4")
    assert set(jobs.prune([sweeps.SWEEP], now=now)) == {folders[0], folders[1]}
    monkeypatch.setenv("MINIDL_KEEP_JOBS", "1")
    with jobs.lock(folders[3]):  # trained by some process: kept whatever its rank
        assert jobs.prune([sweeps.SWEEP], active={folders[4].name}, now=now) == [folders[2]]
    assert sorted(f.name for f in sweeps.SWEEP.root().iterdir()) == sorted(
        [folders[3].name, folders[4].name])
    monkeypatch.delenv("MINIDL_KEEP_JOBS")
    monkeypatch.setenv("MINIDL_KEEP_MB", "1")
    (folders[3] / "big.csv").write_bytes(b"x" * (2 << 20))
    helpers.set_job(folders[3], updated=days_ago(1))
    assert jobs.prune([sweeps.SWEEP], now=now) == [folders[3]]  # the oldest, past the MB
    assert [j.folder for j in jobs.list_jobs(sweeps.SWEEP)] == [folders[4]]  # and the store


def test_every_default_is_valid_and_the_readme_shows_the_table():
    readme = (ROOT / "README.md").read_text()
    for row in limits.describe():
        limit = limits.TABLE[row["variable"]]
        for value in (limit.local, limit.public):
            assert value is None or (isinstance(value, int)
                                     and limit.low <= value <= limit.high), limit
    # the Deploy table is this table: a changed default or range must change the README too
    assert limits.markdown_table() in readme


def test_grids_and_batch_sizes_are_bounded_before_anything_is_allocated():
    def spec(grid, activation="tanh"):
        return sweeps.SweepSpec((activation,), ("sgd",), {"sgd": grid})
    with pytest.raises(ValueError, match=r"101 values \(expected at most 100\)"):
        spec({"lr": [0.001 * (i + 1) for i in range(101)]})
    with pytest.raises(ValueError, match="2,200 configurations is too large"):
        spec({"lr": [0.001 * (i + 1) for i in range(100)], "momentum": [0.0, 0.5],
              "batch_size": list(range(1, 12))})
    two_thousand = {"lr": [0.001 * (i + 1) for i in range(100)],
                    "momentum": [0.05 * i for i in range(10)], "batch_size": [10, 20]}
    assert len(spec(two_thousand).grids["sgd"]["lr"]) == 100  # at the bound: fine
    with pytest.raises(ValueError, match="4,000 configurations"):
        spec(two_thousand, "sigmoid")  # Sigmoid's two gains double it
    with pytest.raises(ValueError, match="batch size"):
        spec({"batch_size": [10 ** 9]})


def test_the_readmes_own_sweep_and_studies_run_from_the_ui_on_your_machine():
    """``minidl sweep --epochs 200 --batch-size 10,20`` and ``minidl reproduce --runs 10
    --epochs 400 --settings paper`` (the README's Results) fit the local defaults."""
    grids = {o: {**hparams.optimizer_grid(o), "batch_size": [10, 20]} for o in hparams.OPTIMIZERS}
    assert jobs.estimate(sweeps.SWEEP, sweeps.SweepSpec(grids=grids, epochs=200)).allowed
    assert jobs.estimate(studies.STUDY, studies.paper_spec(10, 400)).allowed
