"""minidl.tasks: jobs cut into short tasks, trained here or on a Dask cluster, and cancels that
keep every finished configuration."""

import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import helpers
import pandas as pd
import pytest

from minidl import jobs
from minidl.experiments import ablation, cv, studies, sweeps
from minidl.jobs import runner, scheduler, tasks
from minidl.jobs.store import CHECKPOINTS

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
ROOT = Path(__file__).resolve().parent.parent
SWEEP, STUDY = sweeps.SWEEP, studies.STUDY


def spec(**changes) -> sweeps.SweepSpec:
    """Two pairs, three lr values at two batch sizes: a handful of tasks, a second or two."""
    values = dict(activations=("tanh", "relu"), optimizers=("sgd",),
                  grids={"sgd": {"lr": [0.01, 0.03, 0.1], "batch_size": [30, 60]}},
                  folds=2, epochs=3, seed=3, data_seed=1, n_train=120)
    return sweeps.SweepSpec(**{**values, **changes})


def rows(folder: Path) -> pd.DataFrame:
    """Every saved row of a sweep, in one order whatever order they were saved in."""
    table = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("*-*.csv"))])
    return table.sort_values(["activation", "lr", "batch_size"]).reset_index(drop=True)


def assert_same_results(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    keys = ["activation", "optimizer", "lr", "batch_size", "seed", "epochs", "n", "diverged"]
    pd.testing.assert_frame_equal(ours[keys], theirs[keys])
    scores = [c for c in theirs if c.endswith("_score") or c == "mean_train_loss"]
    assert len(scores) >= 4
    pd.testing.assert_frame_equal(ours[scores], theirs[scores], check_exact=False, atol=1e-6,
                                  rtol=0)


# ---------------------------------------------------------------- slices

def test_slices_are_time_bounded_share_a_batch_size_and_cover_the_grid_once():
    grid = {"lr": [0.001 * (i + 1) for i in range(40)], "batch_size": [1, 20]}
    configs = cv.configurations(grid)
    splits = cv.kfold(1000, 5)
    cut = cv.slices(configs, splits, epochs=200)
    assert [c for s in cut for c in s] == sorted(configs, key=lambda c: c["batch_size"])
    for s in cut:
        assert len({c["batch_size"] for c in s}) == 1
        steps = cv.config_steps(s[0], splits, 200) // len(splits)
        alone = tasks.seconds(len(splits), steps, s[0]["batch_size"])
        # within the budget, or as small as a slice can be
        assert tasks.seconds(len(s) * len(splits), steps, s[0]["batch_size"]) <= \
            max(tasks.POPULATION_SECONDS, alone)
    assert len(cut) > 2  # each batch size takes several tasks at 200 epochs
    assert len(cv.slices(configs, splits, epochs=1)) == 2  # one per batch size when short


def test_a_configurations_scores_do_not_depend_on_the_slice_it_trains_in(monkeypatch):
    s = spec()
    X, y = sweeps.training_data(s)
    splits = cv.kfold(s.n_train, s.folds, s.seed)
    configs = cv.configurations(s.grid_for("tanh", "sgd"))
    together = cv.score(X, y, "tanh", "sgd", configs[:3], splits, s.epochs, s.seed)
    alone = [r for c in configs[:3]
             for r in cv.score(X, y, "tanh", "sgd", [c], splits, s.epochs, s.seed)]
    assert_same_results(pd.DataFrame(alone), pd.DataFrame(together))


# ---------------------------------------------------------------- cancel

def test_a_cancel_keeps_every_finished_slice_of_one_batch_size(monkeypatch):
    # one batch size: a single population before; now a slice per configuration
    one = spec(activations=("tanh",), grids={"sgd": {"lr": [0.01, 0.03, 0.1, 0.3],
                                                     "batch_size": [30]}})
    monkeypatch.setattr(tasks, "POPULATION_SECONDS", 1e-6)
    folder = jobs.create(SWEEP, one)
    per_config = 2 * 3 * math.ceil(60 / 30)  # folds × epochs × steps per epoch
    job = helpers.cancel_after(runner.Runner(SWEEP, folder), 2 * per_config)
    assert job.run().status == "cancelled"
    stopped = jobs.info(SWEEP, folder)
    saved = pd.read_csv(folder / "tanh-sgd.csv")
    assert stopped.done == len(saved) and 2 <= len(saved) < 4
    resumed = runner.Runner(SWEEP, folder).run()
    assert resumed.status == "finished" and resumed.total == (4 - len(saved)) * per_config
    assert len(pd.read_csv(folder / "tanh-sgd.csv")) == 4


def test_a_cancel_mid_population_keeps_a_checkpoint_that_resumes_to_the_same_rows(
        monkeypatch, tmp_path):
    # one population (a slice) of 4 configurations × 2 folds, 6 epochs; it pauses and saves
    # a checkpoint after every epoch (SLICE_SECONDS = 0), and the cancel comes in epoch 3
    one = spec(activations=("tanh",), epochs=6,
               grids={"sgd": {"lr": [0.01, 0.03, 0.1, 0.3], "batch_size": [30]}})
    whole = jobs.create(SWEEP, one, tmp_path / "whole")
    assert runner.Runner(SWEEP, whole).run().status == "finished"
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)
    folder = jobs.create(SWEEP, one, tmp_path / "cancelled")
    per_epoch = 4 * 2 * math.ceil(60 / 30)  # configurations × folds × steps per epoch
    job = helpers.cancel_after(runner.Runner(SWEEP, folder), 2 * per_epoch + 1)
    assert job.run().status == "cancelled"
    assert not (folder / "tanh-sgd.csv").exists()  # no configuration had finished …
    [saved] = jobs.find(folder).checkpoints("tanh-sgd")  # … but the population is kept
    assert saved["done"] == 3 * per_epoch and saved["cost"] == 6 * per_epoch
    stopped = jobs.info(SWEEP, folder)
    assert stopped.held == (4, 3 * per_epoch, 6 * per_epoch)
    assert stopped.kept("configuration") == ("0 of 4 configurations saved, and 4 more "
                                             "part-trained (50% of their optimizer steps)")
    assert jobs.estimate(SWEEP, one, folder).steps == 3 * per_epoch  # what a resume trains
    resumed = runner.Runner(SWEEP, folder).run()
    assert resumed.status == "finished" and resumed.total == 3 * per_epoch
    pd.testing.assert_frame_equal(rows(folder).drop(columns="fit_time"),
                                  rows(whole).drop(columns="fit_time"))  # exactly
    assert jobs.find(folder).checkpoints("tanh-sgd") == []  # a finished job keeps none


def test_a_damaged_checkpoint_is_ignored_and_its_slice_starts_over(monkeypatch, tmp_path):
    one = spec(activations=("tanh",), epochs=4,
               grids={"sgd": {"lr": [0.01, 0.1], "batch_size": [30]}})
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)
    folder = jobs.create(SWEEP, one, tmp_path / "damaged")
    assert helpers.cancel_after(runner.Runner(SWEEP, folder), 1).run().status == "cancelled"
    job = jobs.find(folder)
    [saved] = job.checkpoints("tanh-sgd")
    with job.store.begin() as c:  # its state cut short, as a disk that filled up leaves it
        c.execute(CHECKPOINTS.update().values(state=b"PK\x03\x04 cut short"))
    full = jobs.estimate(SWEEP, one).steps
    assert jobs.estimate(SWEEP, one, folder).steps == full  # its slice starts over …
    assert job.checkpoints("tanh-sgd") == [] and jobs.info(SWEEP, folder).held == (0, 0, 0)
    resumed = runner.Runner(SWEEP, folder).run()
    assert resumed.status == "finished" and resumed.total == full
    whole = jobs.create(SWEEP, one, tmp_path / "whole")
    assert runner.Runner(SWEEP, whole).run().status == "finished"
    pd.testing.assert_frame_equal(rows(folder).drop(columns="fit_time"),
                                  rows(whole).drop(columns="fit_time"))


def test_a_cancelled_study_resumes_its_part_trained_pair_from_the_checkpoint(monkeypatch,
                                                                             tmp_path):
    study = studies.StudySpec({("tanh", "sgd"): {"lr": 0.1, "batch_size": 50}}, runs=2,
                              epochs=4)
    whole = jobs.create(STUDY, study, tmp_path / "whole")
    assert runner.Runner(STUDY, whole).run().status == "finished"
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)
    folder = jobs.create(STUDY, study, tmp_path / "cancelled")
    per_epoch = 2 * 20  # runs × steps per epoch (1000 rows, batch 50)
    assert helpers.cancel_after(runner.Runner(STUDY, folder), per_epoch).run().status == \
        "cancelled"
    assert jobs.info(STUDY, folder).held == (2, per_epoch, 4 * per_epoch)  # its first epoch
    resumed = runner.Runner(STUDY, folder).run()
    assert resumed.status == "finished" and resumed.total == 3 * per_epoch
    ours, theirs = studies.load(folder, study), studies.load(whole, study)
    pd.testing.assert_frame_equal(ours.runs, theirs.runs)
    pd.testing.assert_frame_equal(ours.losses, theirs.losses)


def _sigint_ignored_and_blocked() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@pytest.mark.slow
def test_the_command_lines_cancel_message_counts_the_rows_on_disk(tmp_path):
    # twenty batch sizes: twenty slices of ~1 s each (~2.5 s on a busy machine), saved one by
    # one; Ctrl-C once two are: the eighteen others leave ~20 s of margin however busy it is
    args = ["sweep", "--activations", "tanh", "--optimizers", "sgd", "--folds", "2",
            "--epochs", "300", "--lr", "0.1", "--momentum", "0", "--batch-size",
            ",".join(map(str, range(20, 40))), "--workers", "1", "--out", str(tmp_path)]
    # started with SIGINT ignored and blocked, as a script's background job or a thread that
    # was starting a helper process would leave it: Ctrl-C still cancels
    process = subprocess.Popen([sys.executable, "-m", "minidl", *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_sigint_ignored_and_blocked)
    helpers.wait_until(lambda: process.poll() is not None or (
        jobs.locked(tmp_path) and jobs.info(SWEEP, tmp_path).done >= 2), timeout=120)
    assert process.poll() is None, "it stopped before two were saved: " + process.stderr.read()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=600)  # an exit, however busy the machine
    assert process.returncode == 1, f"it went on to the end after Ctrl-C:\n{err}"
    kept = len(pd.read_csv(tmp_path / "tanh-sgd.csv"))  # what it saved, exported as it stopped
    said = re.search(r"sweep cancelled; (\d+) of 20 configurations saved(, and \d+ more "
                     r"part-trained \(\d+% of their optimizer steps\))? in (\S+) ", err)
    assert said, err[-500:]
    assert int(said[1]) == kept and 2 <= kept < 20 and said[3] == str(tmp_path)
    # the population in flight kept its checkpoint, unless the cancel came between tasks
    assert bool(said[2]) == bool(jobs.find(tmp_path).checkpoints("tanh-sgd"))


# ---------------------------------------------------------------- Dask

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local.scheduler_address


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
@pytest.mark.parametrize("pauses", [False, True])
def test_a_sweep_on_a_two_worker_dask_cluster_equals_the_in_process_one(cluster, tmp_path,
                                                                        monkeypatch, pauses):
    here = jobs.create(SWEEP, spec(), tmp_path / "here")
    there = jobs.create(SWEEP, spec(), tmp_path / "there")
    assert runner.Runner(SWEEP, here, workers=2).run().status == "finished"
    if pauses:  # every task pauses after each epoch: its checkpoint goes to a worker and back
        monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)
    progress = runner.Runner(SWEEP, there, workers=2, scheduler=cluster).run()
    assert progress.status == "finished" and progress.done == progress.total > 0
    assert jobs.info(SWEEP, there).done == 12
    assert_same_results(rows(there), rows(here))


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
def test_a_study_on_a_dask_cluster_equals_the_in_process_one(cluster, tmp_path):
    configs = {("tanh", "sgd"): {"lr": 0.1, "batch_size": 50},
               ("relu", "adam"): {"lr": 0.01, "batch_size": 50}}
    study = studies.StudySpec(configs, runs=2, epochs=3)
    here = jobs.create(STUDY, study, tmp_path / "here")
    there = jobs.create(STUDY, study, tmp_path / "there")
    assert runner.Runner(STUDY, here).run().status == "finished"
    assert runner.Runner(STUDY, there, workers=2, scheduler=cluster).run().status == "finished"
    ours, theirs = studies.load(there, study), studies.load(here, study)
    pd.testing.assert_frame_equal(ours.runs, theirs.runs, check_exact=False, atol=1e-6)
    assert (there / "summary.md").exists()


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
def test_an_ablation_on_a_dask_cluster_with_pauses_equals_the_in_process_one(
        cluster, tmp_path, monkeypatch):
    spec = ablation.AblationSpec(knobs=({}, {"loss": "sum"}), runs=2, budgets=(1, 2),
                                 long_epochs=3, pairs=(("tanh", "adam"), ("sigmoid", "sgd")))
    here = jobs.create(ablation.ABLATION, spec, tmp_path / "here")
    there = jobs.create(ablation.ABLATION, spec, tmp_path / "there")
    assert runner.Runner(ablation.ABLATION, here).run().status == "finished"
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)  # checkpoints to a worker and back
    assert runner.Runner(ablation.ABLATION, there, workers=2,
                         scheduler=cluster).run().status == "finished"
    key = ["convention", "activation", "optimizer", "run", "epochs"]
    ours, theirs = (ablation.read_accuracy(f).sort_values(key).reset_index(drop=True)
                    for f in (there, here))
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, atol=1e-6)


@pytest.mark.slow
def test_a_cancelled_ablation_keeps_its_part_trained_pair_and_resumes_to_the_same_rows(
        tmp_path, monkeypatch):
    spec = ablation.AblationSpec(knobs=({}, {"loss": "sum"}), runs=2, budgets=(2, 4),
                                 long_epochs=4, pairs=(("tanh", "sgd"),))
    whole = jobs.create(ablation.ABLATION, spec, tmp_path / "whole")
    assert runner.Runner(ablation.ABLATION, whole).run().status == "finished"
    monkeypatch.setattr(tasks, "SLICE_SECONDS", 0.0)
    folder = jobs.create(ablation.ABLATION, spec, tmp_path / "cancelled")
    per_epoch = 2 * 2 * 1000  # knobs × runs × steps per epoch (batch 1)
    job = helpers.cancel_after(runner.Runner(ablation.ABLATION, folder), per_epoch)
    assert job.run().status == "cancelled"
    assert jobs.info(ablation.ABLATION, folder).held == (4, per_epoch, 4 * per_epoch)
    resumed = runner.Runner(ablation.ABLATION, folder).run()
    assert resumed.status == "finished"
    assert resumed.total == 3 * per_epoch + ablation.ABLATION.steps(spec, "best:tanh-sgd")
    pd.testing.assert_frame_equal(ablation.read_accuracy(folder), ablation.read_accuracy(whole))


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
def test_a_cancel_on_a_dask_cluster_keeps_what_came_back(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "POPULATION_SECONDS", 1e-6)  # a task per configuration
    folder = jobs.create(SWEEP, spec(epochs=300), tmp_path / "cancelled")
    job = helpers.cancel_after(runner.Runner(SWEEP, folder, workers=2, scheduler=cluster), 1)
    assert job.run().status == "cancelled"
    assert jobs.info(SWEEP, folder).done == (len(rows(folder)) if list(folder.glob("*-*.csv"))
                                             else 0) < 12


@pytest.mark.slow
def test_without_a_scheduler_dask_is_never_imported(tmp_path):
    code = ("import sys; from minidl.cli import main; "
            "code = main(['sweep', '--activations', 'tanh', '--optimizers', 'sgd', '--folds', "
            f"'2', '--epochs', '1', '--grid', 'batch_size=50', '--out', {str(tmp_path)!r}]); "
            "loaded = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]; "
            "print('loaded:', loaded); sys.exit(code or bool(loaded))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "loaded: []" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "tanh-sgd.csv").exists()


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
def test_the_command_line_starts_a_local_cluster(tmp_path):
    pytest.importorskip("dask.distributed")
    out = subprocess.run([sys.executable, "-m", "minidl", "sweep", "--activations", "tanh",
                          "--optimizers", "sgd", "--folds", "2", "--epochs", "1", "--grid",
                          "batch_size=50,100", "--scheduler", "local", "--workers", "2",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert jobs.info(SWEEP, tmp_path).status == "finished" and "sgd accuracy" in out.stdout


def test_a_cancel_stops_between_tasks_even_when_each_is_one_epoch(monkeypatch):
    # a population cannot stop in its last epoch: one-epoch tasks stop between tasks
    monkeypatch.setattr(tasks, "POPULATION_SECONDS", 1e-6)
    folder = jobs.create(SWEEP, spec(epochs=1))
    job = helpers.cancel_after(runner.Runner(SWEEP, folder), 1)
    assert job.run().status == "cancelled"
    assert jobs.info(SWEEP, folder).done == len(rows(folder)) == 1


@pytest.mark.cluster
@pytest.mark.xdist_group("cluster")
def test_the_apps_jobs_train_on_the_cluster_its_setting_names(cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("MINIDL_DASK_SCHEDULER", cluster)
    assert scheduler.Scheduler.limits()[-1] == cluster
    here = jobs.create(SWEEP, spec(), tmp_path / "here")
    assert runner.Runner(SWEEP, here).run().status == "finished"
    line = scheduler.Scheduler(*scheduler.Scheduler.limits(), poll=0.05)
    try:
        job = line.submit(SWEEP, jobs.create(SWEEP, spec()))
        end = time.monotonic() + 120
        while job.active:
            assert time.monotonic() < end, "the job did not finish"
            time.sleep(0.1)
    finally:
        line.shutdown()
    assert job.status == "finished", (job.folder / scheduler.LOG_NAME).read_text()[-2000:]
    assert f"--scheduler {cluster}" in " ".join(job.process.args)
    assert_same_results(rows(job.folder), rows(here))


def test_the_scheduler_setting_is_an_address_or_none(monkeypatch):
    from minidl.jobs import limits
    monkeypatch.delenv("MINIDL_DASK_SCHEDULER", raising=False)
    assert limits.get("MINIDL_DASK_SCHEDULER") is None
    monkeypatch.setenv("MINIDL_DASK_SCHEDULER", " tcp://10.0.0.5:8786 ")
    assert limits.get("MINIDL_DASK_SCHEDULER") == "tcp://10.0.0.5:8786"
    monkeypatch.setenv("MINIDL_DASK_SCHEDULER", "none")
    assert limits.get("MINIDL_DASK_SCHEDULER") is None and not limits.problems()
