import json
import math

import helpers
import pandas as pd
import pytest

from minidl import cv, cv_charts, playground, sweeps

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)


def tiny(**changes) -> sweeps.Settings:
    """Two batch sizes = two populations per pair; 120 points, 2 folds, 2 epochs: milliseconds."""
    values = dict(activations=("tanh",), optimizers=("sgd",),
                  grids={"sgd": {"lr": [0.01, 0.1], "batch_size": [30, 60]}},
                  folds=2, epochs=2, seed=0, data_seed=0, n_train=120)
    return sweeps.Settings(**{**values, **changes})


# ---------------------------------------------------------------- persistence and listing

def test_results_root_comes_from_the_environment(results_dir):
    assert sweeps.results_root() == results_dir


def test_new_sweep_writes_its_settings_and_status(results_dir):
    folder = sweeps.new_sweep(tiny())
    assert folder.parent == results_dir
    meta = json.loads((folder / "sweep.json").read_text())
    assert meta["activations"] == ["tanh"] and meta["optimizers"] == ["sgd"]
    assert meta["grids"] == {"sgd": {"lr": [0.01, 0.1], "batch_size": [30, 60]}}
    assert (meta["folds"], meta["epochs"], meta["seed"], meta["data_seed"]) == (2, 2, 0, 0)
    assert meta["status"] == "created" and meta["created"]
    assert sweeps.Settings.from_dict(meta) == tiny()


def test_list_sweeps_newest_first_with_status_and_progress(results_dir):
    first = sweeps.new_sweep(tiny())
    second = sweeps.new_sweep(tiny(epochs=3))
    sweeps.update_meta(first, created="2000-01-01T00:00:00+00:00")
    (results_dir / "not-a-sweep").mkdir()
    (results_dir / "broken").mkdir()
    (results_dir / "broken" / "sweep.json").write_text("{")
    listed = sweeps.list_sweeps()
    assert [s.folder for s in listed] == [second, first]
    assert listed[0].status == "created" and listed[0].resumable
    assert (listed[0].finished, listed[0].total) == (0, 4)


def test_a_running_sweep_without_a_runner_reads_as_interrupted():
    folder = sweeps.new_sweep(tiny())
    sweeps.update_meta(folder, status="running")
    assert sweeps.info(folder).status == "interrupted"
    assert sweeps.info(folder, active={folder.name}).status == "running"


# ---------------------------------------------------------------- running and resuming

def test_runner_trains_every_configuration_and_saves_it():
    folder = sweeps.new_sweep(tiny(activations=("tanh", "relu"), optimizers=("sgd", "adam"),
                                   grids={"sgd": {"lr": [0.1], "batch_size": [60]},
                                          "adam": {"lr": [0.01], "batch_size": [60]}}))
    progress = sweeps.SweepRunner(folder).run()
    assert progress.status == "finished" and progress.done == progress.total > 0
    sweep, result = sweeps.load(folder)
    assert sweep.status == "finished" and sweep.finished == sweep.total == 4
    assert sorted(p.name for p in folder.glob("*.csv")) == [
        "relu-adam.csv", "relu-sgd.csv", "tanh-adam.csv", "tanh-sgd.csv"]
    optimal = result.optimal
    assert list(optimal.index) == ["tanh", "relu"]
    assert "sgd lr" in optimal.columns and "adam accuracy" in optimal.columns


def test_jobs_run_a_sweep_on_the_worker_thread():
    jobs = sweeps.SweepJobs()
    try:
        folder = sweeps.new_sweep(tiny())
        runner = jobs.start(folder)
        assert folder.name in jobs.active() or runner.future.done()
        assert runner.future.result(timeout=60).status == "finished"
        assert jobs.active() == set() and jobs.get(folder.name) is runner
        assert sweeps.info(folder).status == "finished"
    finally:
        jobs.shutdown()


class CancelAfter(sweeps.SweepRunner):
    """Cancels as soon as ``steps`` optimizer steps are done (like a visitor pressing Cancel)."""

    steps = 0

    def _report(self, done: int) -> bool:
        keep_going = super()._report(done)
        if done >= self.steps:
            self.cancel()
        return keep_going


def test_cancelled_sweep_keeps_finished_work_and_resumes_without_redoing_it():
    settings = tiny()
    folder = sweeps.new_sweep(settings)
    first_population = 2 * 2 * 2 * math.ceil(60 / 30)   # lr values × folds × epochs × steps
    runner = CancelAfter(folder)
    runner.steps = first_population
    assert runner.run().status == "cancelled"
    stopped = sweeps.info(folder)
    assert stopped.status == "cancelled" and stopped.resumable
    assert (stopped.finished, stopped.total) == (2, 4)  # the batch-30 population
    before = pd.read_csv(folder / "tanh-sgd.csv")
    assert sorted(before["batch_size"]) == [30, 30]

    remaining = sweeps.remaining_steps(folder, settings)
    assert remaining == {("tanh", "sgd"): 2 * 2 * 2 * 1}
    resumed = sweeps.SweepRunner(folder).run()
    assert resumed.status == "finished" and resumed.total == resumed.done == 8
    after = pd.read_csv(folder / "tanh-sgd.csv")
    assert len(after) == 4 and not after.duplicated(["lr", "batch_size"]).any()
    pd.testing.assert_frame_equal(after.iloc[:2], before)  # not trained again
    assert sweeps.info(folder).status == "finished"


def test_a_failing_sweep_is_recorded_with_its_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(sweeps.cv, "sweep", broken)
    folder = sweeps.new_sweep(tiny())
    progress = sweeps.SweepRunner(folder).run()
    assert progress.status == "failed" and "out of cheese" in progress.error
    assert sweeps.info(folder).error == progress.error


# ---------------------------------------------------------------- grid text

def test_default_grids_survive_formatting_and_parsing():
    for optimizer, grid in cv.DEFAULT_GRIDS.items():
        texts = {k: sweeps.format_values(v) for k, v in grid.items()}
        assert sweeps.parse_grid(texts, optimizer) == grid


@pytest.mark.parametrize("key,text,expected", [
    ("lr", "0.1, 1e-3 ,0.01", [0.1, 0.001, 0.01]),
    ("lr", "0.1, 0.1; 0.2", [0.1, 0.2]),
    ("batch_size", "1, 10.0, 20", [1, 10, 20]),
    ("momentum", "0", [0.0]),
])
def test_parse_values_reads_comma_separated_numbers(key, text, expected):
    values = sweeps.parse_values(key, text)
    assert values == expected
    if key == "batch_size":
        assert all(isinstance(v, int) for v in values)


@pytest.mark.parametrize("key,text,message", [
    ("lr", "", "empty"),
    ("lr", " , ", "empty"),
    ("lr", "0.1, fast", "'fast' is not a number"),
    ("lr", "-0.01", "greater than 0"),
    ("lr", "0", "greater than 0"),
    ("lr", "nan", "not a finite number"),
    ("batch_size", "2.5", "not a positive whole number"),
    ("batch_size", "0", "not a positive whole number"),
    ("beta1", "1.0", "out of range"),
    ("eps", "-1e-8", "greater than 0"),
])
def test_parse_values_rejects_bad_input_with_a_clear_message(key, text, message):
    with pytest.raises(ValueError, match=message) as error:
        sweeps.parse_values(key, text, "adam")
    assert str(error.value).startswith("Adam ")


# ---------------------------------------------------------------- the cap

def test_full_default_sweep_fits_under_the_default_cap():
    size = sweeps.estimate(sweeps.Settings())
    # Sigmoid's pairs also try two init gains: 174 configurations per activation, 348 for it
    assert (size.configurations, size.members, size.member_epochs) == (696, 3480, 87_000)
    assert size.cap == sweeps.DEFAULT_CAP and size.allowed
    assert size.steps == sum(cv.estimate_steps(g, o, 5, 25, 800)
                             for o, g in cv.DEFAULT_GRIDS.items()) * 4


def test_a_pairs_grid_adds_the_activations_extras_and_the_users_values_win():
    settings = tiny(activations=("sigmoid", "tanh"))
    assert settings.grid_for("sigmoid", "sgd") == {"gain": [1.0, 16.0], "lr": [0.01, 0.1],
                                                   "batch_size": [30, 60]}
    assert settings.grid_for("tanh", "sgd") == {"lr": [0.01, 0.1], "batch_size": [30, 60]}
    own = tiny(activations=("sigmoid",), grids={"sgd": {"lr": [0.1], "gain": [4.0]}})
    assert own.grid_for("sigmoid", "sgd")["gain"] == [4.0]
    assert sweeps.estimate(settings, cap=0).configurations == 8 + 4


def test_extras_note_says_what_an_activation_adds_to_its_grids():
    assert sweeps.extras_note(("sigmoid", "tanh")) == "Sigmoid also tries Xavier gain 1, 16."
    assert sweeps.extras_note(("tanh",)) == ""


def test_runner_trains_sigmoids_init_gains_too():
    folder = sweeps.new_sweep(tiny(activations=("sigmoid",),
                                   grids={"sgd": {"lr": [0.1], "batch_size": [60]}}))
    progress = sweeps.SweepRunner(folder).run()
    assert progress.status == "finished" and progress.done == progress.total > 0
    assert sorted(pd.read_csv(folder / "sigmoid-sgd.csv")["gain"]) == [1.0, 16.0]
    assert sweeps.info(folder).finished == sweeps.info(folder).total == 2


def test_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(sweeps.CAP_ENV, "1000")
    size = sweeps.estimate(sweeps.Settings())
    assert size.cap == 1000 and not size.allowed
    assert "87,000 member-epochs" in size.describe() and "cap 1,000" in size.describe()
    monkeypatch.setenv(sweeps.CAP_ENV, "lots")
    with pytest.raises(ValueError, match="MINIDL_SWEEP_CAP"):
        sweeps.work_cap()


def test_settings_are_validated():
    with pytest.raises(ValueError, match="at least one activation"):
        tiny(activations=())
    with pytest.raises(ValueError, match="folds"):
        tiny(folds=1)
    with pytest.raises(ValueError, match="no grid"):
        tiny(optimizers=("adam",))


# ---------------------------------------------------------------- links and charts

def test_playground_link_carries_a_rows_settings():
    row = {"activation": "relu", "optimizer": "adam", "lr": 0.001, "batch_size": 10,
           "beta1": 0.8, "beta2": 0.99, "eps": 1e-9, "mean_score": 0.9}
    query = sweeps.playground_query(row, tiny(epochs=30, data_seed=4))
    settings, warnings = playground.parse_query(query)
    assert warnings == []
    assert {k: settings[k] for k in row if k in settings} == {k: v for k, v in row.items()
                                                             if k != "mean_score"}
    assert (settings["epochs"], settings["data_seed"], settings["n_train"]) == (30, 4, 120)
    link = sweeps.playground_link(row, tiny(n_train=1000))
    assert link.startswith("./?activation=relu&optimizer=adam&lr=0.001&")
    assert sweeps.playground_link(row, tiny(), "playground").startswith("playground?")


def test_charts_skip_diverged_rows():
    table = pd.DataFrame({
        "activation": ["tanh"] * 3, "optimizer": ["sgd"] * 3, "lr": [0.01, 0.01, 10.0],
        "batch_size": [10, 20, 10], "split0_score": [0.8, 0.9, math.nan],
        "split1_score": [0.9, 0.9, math.nan], "mean_score": [0.85, 0.9, math.nan],
        "std_score": [0.05, 0.0, math.nan], "diverged": [False, False, True]})
    frame = cv_charts.lr_frame(table)
    assert frame["lr"].tolist() == [0.01] and frame["mean"].tolist() == [0.9]
    assert cv_charts.lr_chart(table).to_dict()
    folds = cv_charts.fold_frame(table)
    assert len(folds) == 4 and folds["fold"].tolist() == [1, 2, 1, 2]
    assert cv_charts.fold_chart(table).to_dict()


def test_overview_has_a_row_per_saved_sweep():
    sweeps.new_sweep(tiny())
    table = sweeps.overview(sweeps.list_sweeps())
    assert table[["status", "configurations", "folds"]].values.tolist() == [["created", "0 / 4", 2]]
