import json
import math

import pandas as pd
import pytest

from minidl import reproduce, studies

# batch 50: 20 steps an epoch, so these studies take a fraction of a second
FAST = {("tanh", "adam"): {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                           "batch_size": 50},
        ("relu", "sgd"): {"lr": 0.1, "batch_size": 50}}


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_RESULTS_DIR", str(tmp_path))
    return tmp_path / "reproductions"


def test_plan_round_trips_through_its_dict_in_pair_order():
    plan = studies.Plan(FAST, runs=3, epochs=2, seed=1, source="s1", source_label="sweep s1")
    again = studies.Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and again.pairs == [("tanh", "adam"), ("relu", "sgd")]


@pytest.mark.parametrize("change, message", [
    ({"settings": {}}, "at least one"), ({"runs": 0}, "runs"), ({"epochs": 1.5}, "epochs"),
    ({"settings": {("relu", "lbfgs"): {"lr": 1.0, "batch_size": 1}}}, "unknown")])
def test_plan_rejects_bad_values_with_a_message(change, message):
    with pytest.raises(ValueError, match=message):
        studies.Plan(**{"settings": FAST, **change})


def test_estimate_counts_optimizer_steps_of_every_run_against_the_cap(monkeypatch):
    plan = studies.Plan(reproduce.PAPER_SETTINGS, runs=10, epochs=100)
    # the report's batch sizes: 1, 1 (SGD ReLU/Tanh), 10 (Adam Tanh), six times 20
    assert studies.estimate(plan).steps == 10 * 100 * (1000 + 1000 + 100 + 6 * 50)
    assert studies.estimate(plan).allowed  # the full study fits the default cap
    monkeypatch.setenv(studies.CAP_ENV, "1e6")
    assert studies.work_cap() == 1_000_000 and not studies.estimate(plan).allowed
    monkeypatch.setenv(studies.CAP_ENV, "many")
    with pytest.raises(ValueError, match="MINIDL_STUDY_CAP"):
        studies.work_cap()


def test_runner_saves_the_same_numbers_as_one_run_study_call(root):
    plan = studies.Plan(FAST, runs=2, epochs=2)
    folder = studies.new_study(plan)
    assert folder.parent == root
    runner = studies.StudyRunner(folder)
    progress = runner.run()
    assert progress.status == "finished" and progress.done == progress.total == 2 * 2 * 40
    expected = reproduce.run_study(FAST, runs=2, epochs=2)
    def ordered(runs):  # the runner trains in the plan's order, run_study in PAIRS order
        return runs.sort_values(["activation", "optimizer", "run"], ignore_index=True)
    pd.testing.assert_frame_equal(ordered(studies.load(folder).runs), ordered(expected.runs),
                                  check_dtype=False, check_like=True)
    assert (folder / "summary.csv").is_file() and (folder / "fig2_accuracy.html").is_file()
    info, = studies.list_studies()
    assert (info.status, info.pairs_done, info.has_results) == ("finished", 2, True)


def test_cancel_keeps_the_pairs_already_finished(root, monkeypatch):
    folder = studies.new_study(studies.Plan(FAST, runs=2, epochs=2))
    runner = studies.StudyRunner(folder)
    original, calls = reproduce.run_study, []

    def cancel_before_the_second_pair(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            runner.cancel()  # its progress callback now answers False: run_study stops
        return original(*args, **kwargs)
    monkeypatch.setattr(studies.reproduce, "run_study", cancel_before_the_second_pair)
    progress = runner.run()
    assert progress.status == "cancelled"
    info = studies.info(folder)
    assert (info.status, info.pairs_done) == ("cancelled", 1)
    assert studies.load(folder).runs["activation"].unique().tolist() == ["tanh"]


def test_a_study_left_running_by_a_stopped_server_lists_as_interrupted(root):
    folder = studies.new_study(studies.Plan(FAST, runs=2, epochs=1))
    studies.update_meta(folder, status="running")
    assert studies.info(folder).status == "interrupted"
    assert studies.info(folder, active={folder.name}).status == "running"
    assert studies.load(folder) is None
    (root / "junk").mkdir()  # no study.json: skipped
    assert [s.name for s in studies.list_studies()] == [folder.name]


def test_summary_table_shows_mean_and_se_and_survives_all_runs_diverged():
    summary = pd.DataFrame([
        {"activation": "tanh", "optimizer": "sgd", "runs": 10, "diverged": 0, "test_acc": 0.98,
         "test_acc_se": 0.001, "train_acc": 0.99, "train_acc_se": 0.002, "final_loss": 0.0123,
         "paper_test_acc": 0.9849},
        {"activation": "relu", "optimizer": "sgd", "runs": 2, "diverged": 2,
         "test_acc": math.nan, "test_acc_se": 0.0, "train_acc": math.nan, "train_acc_se": 0.0,
         "final_loss": math.nan, "paper_test_acc": math.nan}])
    table = studies.summary_table(summary)
    assert table.iloc[0].tolist() == ["SGD + Tanh", "98.00 ± 0.10", "99.00 ± 0.20", "0.0123",
                                      "98.49", "0 of 10"]
    assert table.iloc[1].tolist() == ["SGD + ReLU", "—", "—", "—", "≥ 96.9", "2 of 2"]


def test_settings_table_leaves_blank_what_an_optimizer_does_not_use():
    table = studies.settings_table({("relu", "sgd"): {"lr": 1e-3, "batch_size": 1},
                                    ("tanh", "adam"): reproduce.PAPER_SETTINGS[("tanh", "adam")]})
    assert list(table.columns) == ["pair", "learning rate", "batch size", "β₁", "β₂", "ε"]
    assert table.iloc[0].tolist() == ["SGD + ReLU", "0.001", "1", "", "", ""]
    assert table.iloc[1].tolist() == ["Adam + Tanh", "0.0001", "10", "0.8", "0.999", "1e-09"]


def test_finished_pairs_are_on_disk_before_the_study_ends(tmp_path):
    """A crash after the first pair keeps it: runs and losses are written pair by pair."""
    plan = studies.Plan(settings={("tanh", "sgd"): {"lr": 0.1, "batch_size": 50},
                                  ("relu", "sgd"): {"lr": 0.1, "batch_size": 50}},
                        source="paper", runs=2, epochs=1, seed=0)
    folder = studies.new_study(plan, root=tmp_path)
    runner = studies.StudyRunner(folder)
    _, first = runner.parts()[0]
    first(lambda done, total: True)
    saved = studies.load(folder)
    assert saved is not None and len(saved.runs) == 2 and saved.runs["activation"].nunique() == 1
