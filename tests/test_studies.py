"""minidl.studies: reproduction studies as saved jobs that resume pair by pair."""

import json
import math

import helpers
import pandas as pd
import pytest

from minidl import jobs
from minidl.experiments import reproduce, studies
from minidl.jobs import runner
from minidl.viz import tables

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
STUDY = studies.STUDY
# batch 50: 20 steps an epoch, so these studies take a fraction of a second
FAST = {("tanh", "adam"): {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                           "batch_size": 50},
        ("relu", "sgd"): {"lr": 0.1, "batch_size": 50}}


def test_spec_round_trips_through_its_dict_in_pair_order():
    spec = studies.StudySpec(FAST, runs=3, epochs=2, seed=1, source="s1",
                             source_label="sweep s1")
    again = studies.StudySpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.pairs == [("tanh", "adam"), ("relu", "sgd")]


@pytest.mark.parametrize("change, message", [
    ({"configs": {}}, "at least one"), ({"runs": 0}, "runs"), ({"epochs": 1.5}, "epochs"),
    ({"configs": {("relu", "lbfgs"): {"lr": 1.0, "batch_size": 1}}}, "unknown"),
    ({"configs": {("relu", "sgd"): {"lr": -1.0}}}, "learning rate")])
def test_spec_rejects_bad_values_with_a_message(change, message):
    with pytest.raises(ValueError, match=message):
        studies.StudySpec(**{"configs": FAST, **change})


def test_estimate_counts_optimizer_steps_of_every_run_against_the_cap(monkeypatch):
    spec = studies.paper_spec(runs=10, epochs=100)
    # the report's batch sizes: 1, 1 (SGD ReLU/Tanh), 10 (Adam Tanh), six times 20
    assert jobs.estimate(STUDY, spec).steps == 10 * 100 * (1000 + 1000 + 100 + 6 * 50)
    assert jobs.estimate(STUDY, spec).allowed  # the full study fits the default cap
    monkeypatch.setenv(STUDY.cap_env, "1e6")
    assert STUDY.work_cap() == 1_000_000 and not jobs.estimate(STUDY, spec).allowed
    monkeypatch.setenv(STUDY.cap_env, "many")
    with pytest.raises(ValueError, match="MINIDL_STUDY_CAP"):
        STUDY.work_cap()


def ordered(runs: pd.DataFrame) -> pd.DataFrame:
    """The runner trains in the spec's order, run_study in PAIRS order."""
    return runs.sort_values(["activation", "optimizer", "run"], ignore_index=True)


def test_runner_saves_the_same_numbers_as_one_run_study_call():
    folder = jobs.create(STUDY, studies.StudySpec(FAST, runs=2, epochs=2))
    assert folder.parent == jobs.results_root() / "studies"
    progress = runner.Runner(STUDY, folder, workers=2).run()
    assert progress.status == "finished" and progress.done == progress.total == 2 * 2 * 40
    expected = reproduce.run_study(FAST, runs=2, epochs=2)
    pd.testing.assert_frame_equal(ordered(studies.load(folder).runs),
                                  ordered(expected.runs[reproduce.RUN_COLUMNS]),
                                  check_dtype=False)
    assert (folder / "summary.csv").is_file() and (folder / "summary.md").is_file()
    info, = jobs.list_jobs(STUDY)
    assert (info.status, info.done, info.total) == ("finished", 4, 4)


def cancel_before_the_second_pair(monkeypatch, job: runner.Runner) -> list:
    original, calls = reproduce.train_runs, []

    def train_runs(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            job.cancel()  # its progress callback now answers False: train_runs stops
        return original(*args, **kwargs)
    monkeypatch.setattr(studies.reproduce, "train_runs", train_runs)
    return calls


def test_cancel_keeps_the_pairs_already_finished_and_resume_trains_only_the_rest(monkeypatch):
    spec = studies.StudySpec(FAST, runs=2, epochs=2)
    folder = jobs.create(STUDY, spec)
    job = runner.Runner(STUDY, folder)
    with pytest.MonkeyPatch.context() as patch:
        cancel_before_the_second_pair(patch, job)
        assert job.run().status == "cancelled"
    info = jobs.info(STUDY, folder)
    assert (info.status, info.done, info.resumable) == ("cancelled", 2, True)
    # the second pair stopped after its first epoch and kept it in a checkpoint
    assert info.held == (2, 2 * 20, 2 * 2 * 20)
    assert studies.load(folder, spec).runs["activation"].unique().tolist() == ["tanh"]

    trained = []
    original = reproduce.train_runs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(studies.reproduce, "train_runs",
                      lambda *a, **k: trained.append(a[0]) or original(*a, **k))
        resumed = runner.Runner(STUDY, folder).run()
    assert resumed.status == "finished" and trained == [("relu", "sgd")]
    assert resumed.total == 2 * 20  # only the second pair's last epoch
    expected = reproduce.run_study(FAST, runs=2, epochs=2)
    pd.testing.assert_frame_equal(ordered(studies.load(folder, spec).runs),
                                  ordered(expected.runs[reproduce.RUN_COLUMNS]),
                                  check_dtype=False)
    assert len(studies.load(folder, spec).losses) == len(expected.losses)


def test_a_study_left_running_by_a_stopped_server_lists_as_interrupted():
    folder = jobs.create(STUDY, studies.StudySpec(FAST, runs=2, epochs=1))
    helpers.set_job(folder, status="running")
    assert jobs.info(STUDY, folder).status == "interrupted"
    assert jobs.info(STUDY, folder, active={folder.name}).status == "running"
    assert studies.load(folder) is None
    (folder.parent / "junk").mkdir()  # no study.json: skipped
    assert [s.name for s in jobs.list_jobs(STUDY)] == [folder.name]


def test_finished_pairs_are_saved_before_the_study_ends(tmp_path):
    """A crash after the first pair keeps it: runs and losses are saved pair by pair."""
    spec = studies.StudySpec({("tanh", "sgd"): {"lr": 0.1, "batch_size": 50},
                              ("relu", "sgd"): {"lr": 0.1, "batch_size": 50}}, runs=2, epochs=1)
    folder = jobs.create(STUDY, spec, tmp_path / "study")
    job = jobs.find(folder)
    [task] = STUDY.tasks(spec, "tanh-sgd", job)
    STUDY.save(spec, "tanh-sgd", job, task.fn(*task.args))
    saved = studies.load(folder, spec)
    assert saved is not None and len(saved.runs) == 2 and saved.runs["activation"].nunique() == 1
    assert STUDY.steps(spec, "tanh-sgd", job) == 0 and STUDY.steps(spec, "relu-sgd", job)


def test_a_study_of_a_sweeps_choice_takes_its_optimal_configurations(tmp_path):
    from minidl.experiments import sweeps

    sweep = jobs.create(sweeps.SWEEP, sweeps.SweepSpec(
        ("tanh",), ("sgd",), {"sgd": {"lr": [0.01, 0.1], "batch_size": [60]}}, folds=2,
        epochs=1, n_train=120))
    runner.Runner(sweeps.SWEEP, sweep).run()
    spec = studies.sweep_spec(sweep, runs=2, epochs=1)
    best = sweeps.load(sweep).results[("tanh", "sgd")].best_config
    assert spec.configs == {("tanh", "sgd"): best} and spec.source == sweep.name


# ---------------------------------------------------------------- tables for people

def test_summary_table_shows_mean_and_se_and_survives_all_runs_diverged():
    summary = pd.DataFrame([
        {"activation": "tanh", "optimizer": "sgd", "runs": 10, "diverged": 0, "test_acc": 0.98,
         "test_acc_se": 0.001, "train_acc": 0.99, "train_acc_se": 0.002, "final_loss": 0.0123,
         "paper_test_acc": 0.9849},
        {"activation": "relu", "optimizer": "sgd", "runs": 2, "diverged": 2,
         "test_acc": math.nan, "test_acc_se": 0.0, "train_acc": math.nan, "train_acc_se": 0.0,
         "final_loss": math.nan, "paper_test_acc": math.nan}])
    table = tables.summary_table(summary)
    assert table.iloc[0].tolist() == ["SGD + Tanh", "98.00 ± 0.10", "99.00 ± 0.20", "0.0123",
                                      "98.49", "0 of 10"]
    assert table.iloc[1].tolist() == ["SGD + ReLU", "—", "—", "—", "≥ 96.9", "2 of 2"]


def test_configs_table_leaves_blank_what_an_optimizer_does_not_use():
    table = tables.configs_table({("relu", "sgd"): {"lr": 1e-3, "batch_size": 1},
                                  ("tanh", "adam"): reproduce.PAPER_CONFIGS[("tanh", "adam")]})
    assert list(table.columns) == ["pair", "learning rate", "β₁", "β₂", "ε", "batch size"]
    assert table.iloc[0].tolist() == ["SGD + ReLU", "0.001", "", "", "", "1"]
    assert table.iloc[1].tolist() == ["Adam + Tanh", "0.0001", "0.8", "0.999", "1e-09", "10"]
