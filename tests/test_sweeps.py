"""minidl.sweeps: the pair sweep, Table I, and sweeps as saved, resumable jobs."""

import json
import math

import helpers
import pandas as pd
import pytest

from minidl import data, hparams, jobs
from minidl.engine import fit as pop
from minidl.experiments import cv, sweeps
from minidl.jobs import limits, runner
from minidl.viz import cv as cv_charts
from minidl.viz import tables

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
SWEEP = sweeps.SWEEP


def tiny(**changes) -> sweeps.SweepSpec:
    """Two batch sizes = two populations per pair; 120 points, 2 folds, 2 epochs: milliseconds."""
    values = dict(activations=("tanh",), optimizers=("sgd",),
                  grids={"sgd": {"lr": [0.01, 0.1], "batch_size": [30, 60]}},
                  folds=2, epochs=2, seed=0, data_seed=0, n_train=120)
    return sweeps.SweepSpec(**{**values, **changes})


@pytest.fixture(scope="module")
def disk():
    return data.disk(300, seed=0)


# ---------------------------------------------------------------- in memory

def test_sweep_builds_table_one_layout(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [20], "beta1": [0.9], "rho": [0.9]}
    result = sweeps.sweep(X, y, ["relu", "tanh"], ["sgd", "adam", "rmsprop"], grid, folds=3,
                          epochs=2)
    assert set(result.results) == {(a, o) for a in ("relu", "tanh")
                                   for o in ("sgd", "adam", "rmsprop")}
    optimal = result.optimal
    assert list(optimal.index) == ["relu", "tanh"]
    assert list(optimal.columns) == [
        "sgd lr", "sgd momentum", "sgd weight_decay", "sgd l1", "sgd batch_size",
        "sgd accuracy",
        "adam lr", "adam beta1", "adam beta2", "adam eps", "adam weight_decay", "adam l1",
        "adam batch_size", "adam accuracy",
        "rmsprop lr", "rmsprop rho", "rmsprop eps", "rmsprop weight_decay", "rmsprop l1",
        "rmsprop batch_size", "rmsprop accuracy"]
    for (a, o), r in result.results.items():
        assert optimal.loc[a, f"{o} accuracy"] == pytest.approx(r.table["mean_score"].max())
        assert optimal.loc[a, f"{o} lr"] == r.best_config["lr"]
    assert len(result.table) == 2 * (2 + 2 + 2)


def test_overrides_replace_a_keys_values_in_every_pairs_grid():
    grid = sweeps.pair_grid("sigmoid", "adam", overrides={"batch_size": [10, 20],
                                                          "weight_decay": [0.0, 1e-4]})
    assert grid["batch_size"] == [10, 20] and grid["weight_decay"] == [0.0, 1e-4]
    assert grid["gain"] == [1.0, 16.0] and "momentum" not in grid
    with pytest.raises(ValueError, match="weight"):
        sweeps.pair_grid("tanh", "sgd", overrides={"weight_decay": [-1.0]})


def test_default_grids_cover_the_reports_table_one_values():
    g = {o: hparams.optimizer_grid(o) for o in hparams.OPTIMIZERS}
    for o in ("sgd", "adam", "rmsprop"):
        assert {1e-4, 1e-3, 1e-2, 1e-1} <= set(g[o]["lr"])
        assert {1, 10, 20} <= set(g[o]["batch_size"])
        assert g[o]["weight_decay"] == [0.0]  # searchable, but off unless asked for
    assert {0.8, 0.9} <= set(g["adam"]["beta1"]) and {0.99, 0.999} <= set(g["adam"]["beta2"])
    assert {1e-9, 1e-8} <= set(g["adam"]["eps"]) and {1e-9, 1e-8} <= set(g["rmsprop"]["eps"])
    assert {0.9, 0.99} <= set(g["rmsprop"]["rho"])
    assert max(g["sgd"]["lr"]) >= 1.0  # what Sigmoid needs
    assert max(hparams.default_grid("sigmoid", "sgd")["gain"]) > 1
    assert "gain" not in hparams.default_grid("tanh", "adam")


# ---------------------------------------------------------------- persistence and listing

def test_results_root_comes_from_the_environment(results_dir):
    assert SWEEP.root() == results_dir == jobs.results_root() / "sweeps"


def test_a_new_sweep_is_saved_and_exports_its_spec_and_status(results_dir):
    folder = jobs.create(SWEEP, tiny())
    assert folder.parent == results_dir
    saved = jobs.info(SWEEP, folder)
    assert (saved.spec, saved.status, saved.total) == (tiny(), "created", 4)
    assert runner.Runner(SWEEP, folder).run().status == "finished"
    meta = json.loads((folder / "sweep.json").read_text())
    assert meta["activations"] == ["tanh"] and meta["optimizers"] == ["sgd"]
    assert meta["grids"] == {"sgd": {"lr": [0.01, 0.1], "batch_size": [30, 60]}}
    assert (meta["folds"], meta["epochs"], meta["seed"], meta["data_seed"]) == (2, 2, 0, 0)
    assert meta["status"] == "finished" and meta["created"] == saved.created
    assert sweeps.SweepSpec.from_dict(meta) == tiny()


def test_list_jobs_newest_first_with_status_and_progress(results_dir):
    first = jobs.create(SWEEP, tiny())
    second = jobs.create(SWEEP, tiny(epochs=3))
    helpers.set_job(first, created="2000-01-01T00:00:00+00:00")
    (results_dir / "not-a-sweep").mkdir()
    (results_dir / "broken").mkdir()
    (results_dir / "broken" / "sweep.json").write_text("{")
    listed = jobs.list_jobs(SWEEP)
    assert [s.folder for s in listed] == [second, first, results_dir / "broken"]
    assert listed[0].status == "created" and listed[0].resumable
    assert listed[2].status == "damaged" and not listed[2].resumable
    assert listed[2].error.startswith("sweep.json is not valid JSON")
    assert (listed[0].done, listed[0].total) == (0, 4)


def test_a_running_sweep_without_a_runner_reads_as_interrupted():
    folder = jobs.create(SWEEP, tiny())
    helpers.set_job(folder, status="running")
    assert jobs.info(SWEEP, folder).status == "interrupted"
    assert jobs.info(SWEEP, folder, active={folder.name}).status == "running"


def test_open_or_create_resumes_the_same_sweep_and_refuses_another(tmp_path):
    folder = jobs.open_or_create(SWEEP, tiny(), tmp_path / "mine")
    assert jobs.open_or_create(SWEEP, tiny(), folder) == folder
    with pytest.raises(ValueError, match="another sweep"):
        jobs.open_or_create(SWEEP, tiny(epochs=5), folder)


# ---------------------------------------------------------------- running and resuming

def test_runner_trains_every_configuration_and_saves_it():
    folder = jobs.create(SWEEP, tiny(activations=("tanh", "relu"), optimizers=("sgd", "adam"),
                                     grids={"sgd": {"lr": [0.1], "batch_size": [60]},
                                            "adam": {"lr": [0.01], "batch_size": [60]}}))
    progress = runner.Runner(SWEEP, folder, workers=2).run()
    assert progress.status == "finished" and progress.done == progress.total > 0
    info = jobs.info(SWEEP, folder)
    assert info.status == "finished" and info.done == info.total == 4
    assert sorted(p.name for p in folder.glob("*.csv")) == [  # the exported tables
        "optimal.csv", "relu-adam.csv", "relu-sgd.csv", "tanh-adam.csv", "tanh-sgd.csv"]
    optimal = sweeps.load(folder).optimal
    assert list(optimal.index) == ["tanh", "relu"]
    assert "sgd lr" in optimal.columns and "adam accuracy" in optimal.columns


def test_the_saved_sweep_equals_the_in_memory_one():
    spec = tiny()
    folder = jobs.create(SWEEP, spec)
    runner.Runner(SWEEP, folder).run()
    X, y = sweeps.training_data(spec)
    memory = sweeps.sweep(X, y, spec.activations, spec.optimizers, spec.grids["sgd"],
                          folds=spec.folds, epochs=spec.epochs, seed=spec.seed)
    columns = ["lr", "batch_size", "mean_score", "std_score", "rank"]
    pd.testing.assert_frame_equal(sweeps.load(folder).table[columns], memory.table[columns],
                                  check_dtype=False)


def test_cancelled_sweep_keeps_finished_work_and_resumes_without_redoing_it():
    spec = tiny()
    folder = jobs.create(SWEEP, spec)
    first_population = 2 * 2 * 2 * math.ceil(60 / 30)   # lr values × folds × epochs × steps
    assert helpers.cancel_after(runner.Runner(SWEEP, folder), first_population).run().status == "cancelled"
    stopped = jobs.info(SWEEP, folder)
    assert stopped.status == "cancelled" and stopped.resumable
    assert (stopped.done, stopped.total) == (2, 4)  # the batch-30 population
    before = pd.read_csv(folder / "tanh-sgd.csv")
    assert sorted(before["batch_size"]) == [30, 30]

    assert SWEEP.steps(spec, "tanh-sgd", jobs.find(folder)) == 2 * 2 * 2 * 1  # batch 60 only
    resumed = runner.Runner(SWEEP, folder).run()
    assert resumed.status == "finished" and resumed.total == resumed.done == 8
    after = pd.read_csv(folder / "tanh-sgd.csv")
    assert len(after) == 4 and not after.duplicated(["lr", "batch_size"]).any()
    kept = after[after["batch_size"] == 30].drop(columns="rank").sort_values("lr")
    pd.testing.assert_frame_equal(kept.reset_index(drop=True),  # not trained again
                                  before.drop(columns="rank").sort_values("lr").reset_index(
                                      drop=True))
    assert jobs.info(SWEEP, folder).status == "finished"


def test_a_failing_sweep_is_recorded_with_its_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(sweeps.cv, "score", broken)
    folder = jobs.create(SWEEP, tiny())
    progress = runner.Runner(SWEEP, folder).run()
    assert progress.status == "failed" and "out of cheese" in progress.error
    assert jobs.info(SWEEP, folder).error == progress.error


def test_stored_rows_refuse_another_number_of_folds_and_the_store_outlives_its_files(tmp_path):
    spec = tiny()
    folder = jobs.create(SWEEP, spec)
    runner.Runner(SWEEP, folder).run()
    with pytest.raises(ValueError, match="folds"):
        sweeps.stored_rows(jobs.find(folder), tiny(folds=3), ("tanh", "sgd"))
    (folder / "tanh-sgd.csv").write_text("lr,colour\n0.1,red\n")  # the export, hand-edited
    assert len(sweeps.load(folder).table) == 4  # the store is what a saved sweep holds


def test_weight_decay_goes_through_a_saved_sweep():
    spec = tiny(grids={"sgd": {"lr": [0.1], "batch_size": [60], "weight_decay": [0.0, 0.01]}})
    folder = jobs.create(SWEEP, spec)
    assert runner.Runner(SWEEP, folder).run().status == "finished"
    table = sweeps.load(folder).table
    assert sorted(table["weight_decay"]) == [0.0, 0.01]
    assert table["mean_train_loss"].nunique() == 2  # the decay changed the training


# ---------------------------------------------------------------- size and cap

def test_full_default_sweep_fits_under_the_default_cap():
    size = jobs.estimate(SWEEP, sweeps.SweepSpec())
    # Sigmoid's pairs also try two init gains: 174 configurations per activation, 348 for it
    assert (size.units, size.networks) == (696, 3480)
    assert size.cap == limits.TABLE[SWEEP.cap_env].local and size.allowed
    n = cv.fold_train_size(1000, 5)
    per_activation = sum(5 * pop.steps(n, cv.complete(c)["batch_size"], 25)
                         for o in hparams.OPTIMIZERS
                         for c in cv.configurations(hparams.optimizer_grid(o)))
    assert size.steps == per_activation * 4 == 26_680_000


def test_a_pairs_grid_adds_the_activations_extras_and_the_users_values_win():
    spec = tiny(activations=("sigmoid", "tanh"))
    assert spec.grid_for("sigmoid", "sgd") == {"gain": [1.0, 16.0], "lr": [0.01, 0.1],
                                               "batch_size": [30, 60]}
    assert spec.grid_for("tanh", "sgd") == {"lr": [0.01, 0.1], "batch_size": [30, 60]}
    own = tiny(activations=("sigmoid",), grids={"sgd": {"lr": [0.1], "gain": [4.0]}})
    assert own.grid_for("sigmoid", "sgd")["gain"] == [4.0]
    assert jobs.estimate(SWEEP, spec).units == 8 + 4


def test_extras_note_says_what_an_activation_adds_to_its_grids():
    assert tables.extras_note(("sigmoid", "tanh")) == "Sigmoid also tries Xavier gain 1, 16."
    assert tables.extras_note(("tanh",)) == ""


def test_runner_trains_sigmoids_init_gains_too():
    folder = jobs.create(SWEEP, tiny(activations=("sigmoid",),
                                     grids={"sgd": {"lr": [0.1], "batch_size": [60]}}))
    progress = runner.Runner(SWEEP, folder).run()
    assert progress.status == "finished" and progress.done == progress.total > 0
    assert sorted(pd.read_csv(folder / "sigmoid-sgd.csv")["gain"]) == [1.0, 16.0]
    info = jobs.info(SWEEP, folder)
    assert info.done == info.total == 2


def test_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(SWEEP.cap_env, "1000")
    size = jobs.estimate(SWEEP, sweeps.SweepSpec())
    assert size.cap == 1000 and not size.allowed
    assert "26,680,000 optimizer steps" in size.describe() and "cap 1,000" in size.describe()
    for bad in ("lots", "inf", "0"):
        monkeypatch.setenv(SWEEP.cap_env, bad)
        with pytest.raises(ValueError, match="MINIDL_SWEEP_CAP"):
            SWEEP.work_cap()


def test_specs_are_validated():
    with pytest.raises(ValueError, match="at least one activation"):
        tiny(activations=())
    with pytest.raises(ValueError, match="folds"):
        tiny(folds=1)
    with pytest.raises(ValueError, match="no grid"):
        tiny(optimizers=("adam",))
    with pytest.raises(ValueError, match="activation"):
        tiny(activations=("gelu",))
    with pytest.raises(ValueError, match="learning rate"):
        tiny(grids={"sgd": {"lr": [0.0]}})


# ---------------------------------------------------------------- charts and tables

def test_charts_skip_diverged_rows():
    table = pd.DataFrame({
        "activation": ["tanh"] * 3, "optimizer": ["sgd"] * 3, "lr": [0.01, 0.01, 10.0],
        "batch_size": [10, 20, 10], "split0_score": [0.8, 0.9, math.nan],
        "split1_score": [0.9, 0.9, math.nan], "mean_score": [0.85, 0.9, math.nan],
        "std_score": [0.05, 0.0, math.nan], "diverged": [False, False, True]})
    frame = cv_charts.lr_frame(table)
    assert frame["lr"].tolist() == [0.01] and frame["mean"].tolist() == [0.9]
    assert [c.to_dict() for c in cv_charts.lr_charts(table)]
    folds = cv_charts.fold_frame(table)
    assert len(folds) == 4 and folds["fold"].tolist() == [1, 2, 1, 2]
    assert cv_charts.fold_chart(table).to_dict()


def test_overview_has_a_row_per_saved_sweep():
    jobs.create(SWEEP, tiny())
    table = tables.jobs_overview(jobs.list_jobs(SWEEP), SWEEP.unit)
    assert table[["status", "configurations"]].values.tolist() == [["created", "0 / 4"]]


def test_the_learning_rate_axis_is_ticked_at_the_grids_values():
    lrs = [0.0001, 0.002, 0.03, 0.5]
    table = pd.DataFrame({
        "activation": ["tanh"] * 4, "optimizer": ["adam"] * 4, "lr": lrs, "batch_size": 10,
        "split0_score": 0.8, "split1_score": 0.9, "mean_score": 0.85, "std_score": 0.05,
        "diverged": False})
    [chart] = cv_charts.lr_charts(table)
    axis = chart.to_dict()["layer"][0]["encoding"]["x"]["axis"]
    assert axis["values"] == lrs and axis["format"] == "~g"
