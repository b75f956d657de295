"""The report's unstated conventions as settings, and minidl.ablation over Table I."""

import math
import re

import helpers
import pandas as pd
import pytest
import torch

from minidl import Config, Run, data, hparams, jobs
from minidl.engine import fit as pop
from minidl.experiments import ablation, cv, reproduce
from minidl.jobs import runner
from minidl.viz import ablation as figures

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)
ABLATION = ablation.ABLATION


# ---------------------------------------------------------------- conventions as settings

def test_every_convention_is_a_searchable_setting_of_the_table():
    conventions = [n for n, s in hparams.TABLE.items() if s.convention]
    assert conventions == ["inputs", "init_scale", "init_dist", "init_bias", "loss", "targets"]
    for name in conventions:
        s = hparams.TABLE[name]
        assert s.searchable and s.fresh_run and "config" in s.where and "cli" in s.where
        assert name in Config.field_names()


def test_targets_and_inputs_are_encoded_as_their_settings_say():
    y = torch.tensor([0, 1, 1])
    assert data.encode_targets(y, "one_hot").tolist() == [[1, 0], [0, 1], [0, 1]]
    assert data.encode_targets(y, "signed").tolist() == [[1, -1], [-1, 1], [-1, 1]]
    X, _ = data.disk(20000, seed=0)
    Z = data.encode_inputs(X, "standardised")
    assert Z.mean(0).abs().max() < 0.02 and (Z.std(0) - 1).abs().max() < 0.02
    assert data.encode_inputs(X, "raw") is X


def test_a_run_trains_under_any_convention_and_predicts_on_raw_points():
    config = Config(n_train=100, n_test=100, epochs=2, batch_size=10, inputs="standardised",
                    targets="signed", loss="sum", lr=0.001, init_scale="std", init_dist="uniform",
                    init_bias="zero")
    run = Run(config).fit()
    assert run.epoch == 2 and not run.diverged
    assert torch.equal(run.predict(run.X_test),
                       run.model.forward(data.encode_inputs(run.X_test, "standardised")))
    assert run.loss.reduction == "sum" and run.T_train.min() == -1


def test_conventions_per_member_match_their_sequential_twins():
    """A population mixing every knob trains each member as it would train alone."""
    X, y = data.disk(200, seed=0)
    splits = cv.kfold(len(y), 2, 0)
    members = [pop.Member({**cv.complete({"lr": 0.01, "batch_size": 10, **knob}),
                           "activation": "sigmoid", "optimizer": "sgd"}, tr, va, seed=f)
               for knob in ablation.KNOBS for f, (tr, va) in enumerate(splits)]
    batched = pop.fit(X, y, members, cv.SIZES, 2)
    alone = pop.fit(X, y, members, cv.SIZES, 2, max_population=1)
    for a, b in zip(batched, alone):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4, abs=1e-7)


# ---------------------------------------------------------------- the ablation

def tiny(**changes) -> ablation.AblationSpec:
    values = dict(knobs=({}, {"targets": "signed"}, {"gain": 16.0}), runs=2, budgets=(1, 2),
                  long_epochs=3, pairs=(("tanh", "adam"), ("sigmoid", "rmsprop")))
    return ablation.AblationSpec(**{**values, **changes})


def test_knob_names_come_from_the_settings_table():
    assert ablation.knob_name({}) == "as we read it"
    assert ablation.knob_name({"loss": "sum"}) == "MSE: sum over all elements"
    assert ablation.knob_name({"targets": "signed", "gain": 16.0}) == "targets: ±1; gain: 16"


@pytest.mark.parametrize("change, message", [
    ({"knobs": ({"loss": "sum"},)}, "first knob"), ({"knobs": ({}, {"loss": "max"})}, "MSE"),
    ({"budgets": ()}, "budget"), ({"runs": 0}, "runs"),
    ({"pairs": (("relu", "lbfgs"),)}, "pairs")])
def test_a_bad_spec_is_refused_with_a_message(change, message):
    with pytest.raises(ValueError, match=message):
        tiny(**change)


def test_the_baseline_knob_is_the_reports_study_as_written():
    """'As we read it' trains exactly what reproduce.run_study trains for Table I."""
    rows = ablation.train_pair(("tanh", "adam"), [("ours", {})], 2, 2, [2])
    study = reproduce.run_study(reproduce.PAPER_CONFIGS, runs=2, epochs=2,
                                pairs=[("tanh", "adam")])
    assert [r["test_acc"] for r in rows] == pytest.approx(study.runs["test_acc"].tolist(),
                                                          abs=1e-6)


def test_best_combination_takes_per_setting_the_value_that_helps_most():
    spec = tiny(knobs=({}, {"loss": "sum"}, {"loss": "batch_mean"}, {"targets": "signed"},
                       {"gain": 16.0}))
    acc = {"as we read it": 0.95, "MSE: sum over all elements": 0.97,
           "MSE: sum over outputs, mean over batch": 0.96, "targets: ±1": 0.94,
           "gain: 16": 0.975}
    table = pd.DataFrame([{"convention": c, "activation": a, "optimizer": o, "run": 0,
                           "epochs": 2, "test_acc": v, "diverged": False}
                          for c, v in acc.items() for a, o in spec.pairs])
    assert ablation.best_combination(table, spec) == {"loss": "sum", "gain": 16.0}


def test_the_job_trains_knobs_then_the_best_combination_and_resumes_between_stages():
    spec = tiny()
    folder = jobs.create(ABLATION, spec)
    assert ABLATION.stages(spec) == [["knobs:tanh-adam", "knobs:sigmoid-rmsprop"],
                                     ["best:tanh-adam", "best:sigmoid-rmsprop"]]
    first = runner.Runner(ABLATION, folder)
    stage_one = sum(ABLATION.steps(spec, p) for p in ABLATION.stages(spec)[0])

    def stop_after_stage_one(done: int, total: int, report=first._report) -> bool:
        if done >= stage_one:
            first.cancel()
        return report(done, total)
    first._report = stop_after_stage_one
    assert first.run().status == "cancelled"
    accuracy = ablation.read_accuracy(folder)
    assert set(accuracy["convention"]) == {ablation.knob_name(k) for k in spec.knobs}
    # 2 pairs × 3 knobs × 2 runs at budgets 1, 2 (and 3 for the Sigmoid pair, its long budget)
    assert len(accuracy) == 3 * 2 * 2 + 3 * 2 * 3

    resumed = runner.Runner(ABLATION, folder).run()
    assert resumed.status == "finished" and resumed.total == sum(
        ABLATION.steps(spec, p) for p in ABLATION.stages(spec)[1])
    accuracy = ablation.read_accuracy(folder)
    assert (accuracy["convention"] == ablation.BEST).sum() == 2 * 2 + 2 * 3
    summary = pd.read_csv(folder / "summary.csv")
    assert set(summary["epochs"]) == {1, 2, 3}
    text = (folder / "summary.md").read_text()
    assert "**2 epochs**" in text and "| best combination |" in text and "SGD + Tanh" not in text


def test_wide_table_marks_pairs_over_the_floor_and_sgd_tanhs_gap():
    summary = pd.DataFrame([
        {"convention": "as we read it", "activation": a, "optimizer": o, "epochs": 400,
         "test_acc": acc, "test_acc_se": 0.001, "runs": 10, "diverged": 0}
        for (a, o), acc in ((("tanh", "sgd"), 0.9759), (("sigmoid", "sgd"), 0.4914))])
    table = ablation.wide(summary, 400)
    assert table.iloc[0].tolist() == ["as we read it", "97.59 ± 0.10", "49.14 ± 0.10", "1 of 2",
                                      "-0.90"]
    assert figures.figure(summary, 400).to_dict()


@pytest.mark.slow
def test_cli_runs_a_tiny_ablation_and_writes_tables_and_figures(run_cli, tmp_path):
    out = run_cli("ablate", "--runs", "1", "--epochs", "1", "--long-epochs", "2", "--out",
                  str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in ("accuracy.csv", "summary.csv", "summary.md", "ablation_1.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "as we read it" in out.stdout and "SGD + Tanh − 98.49" in out.stdout
    rows = [line for line in out.stdout.splitlines() if re.search(r"\d\.\d\d ± \d", line)]
    assert rows and max(map(len, rows)) <= 100  # the tables wrapped for a terminal
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary[summary["epochs"] == 1]) == 9 * (len(ablation.KNOBS) + 1)
    assert not math.isnan(summary["test_acc"].iloc[0])
