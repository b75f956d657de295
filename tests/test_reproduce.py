import math

import pandas as pd
import pytest

from minidl import jobs
from minidl.experiments import reproduce, sweeps
from minidl.jobs import runner


def test_standard_error_matches_a_hand_computed_case():
    # values 1, 2, 3, 4: mean 2.5, sample variance (2.25+0.25+0.25+2.25)/3 = 5/3
    assert reproduce.standard_error([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2)
    assert reproduce.standard_error([0.97]) == 0.0


def test_paper_preset_is_the_reports_table_one():
    p = reproduce.PAPER_CONFIGS
    assert p[("relu", "sgd")] == {"lr": 0.001, "batch_size": 1}
    assert p[("tanh", "sgd")] == {"lr": 0.01, "batch_size": 1}
    assert p[("sigmoid", "sgd")] == {"lr": 0.01, "batch_size": 20}
    assert p[("relu", "adam")] == {"lr": 1e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-9,
                                   "batch_size": 20}
    assert p[("tanh", "adam")] == {"lr": 1e-4, "beta1": 0.8, "beta2": 0.999, "eps": 1e-9,
                                   "batch_size": 10}
    assert p[("sigmoid", "adam")] == {"lr": 1e-4, "beta1": 0.8, "beta2": 0.99, "eps": 1e-9,
                                      "batch_size": 20}
    assert p[("relu", "rmsprop")] == {"lr": 1e-4, "rho": 0.9, "eps": 1e-9, "batch_size": 20}
    assert p[("tanh", "rmsprop")] == {"lr": 1e-3, "rho": 0.9, "eps": 1e-9, "batch_size": 20}
    assert p[("sigmoid", "rmsprop")] == {"lr": 1e-4, "rho": 0.9, "eps": 1e-9, "batch_size": 20}
    assert reproduce.PAPER_ACCURACY[("tanh", "sgd")] == 0.9849
    assert reproduce.PAPER_MIN_ACCURACY == 0.969


def test_study_runs_every_pair_with_fresh_seeded_draws():
    settings = {("tanh", "adam"): {"lr": 0.01, "batch_size": 50},
                ("relu", "sgd"): {"lr": 0.1, "batch_size": 50}}
    study = reproduce.run_study(settings, runs=3, epochs=2)
    assert len(study.runs) == 6 and len(study.losses) == 6 * 2
    summary = study.summary
    assert list(summary[["activation", "optimizer"]].itertuples(index=False, name=None)) == [
        ("relu", "sgd"), ("tanh", "adam")]
    tanh = study.runs[study.runs["activation"] == "tanh"]
    row = summary.set_index("activation").loc["tanh"]
    assert row["test_acc"] == pytest.approx(tanh["test_acc"].mean())
    assert row["test_acc_se"] == pytest.approx(tanh["test_acc"].std(ddof=1) / math.sqrt(3))
    assert tanh["test_acc"].nunique() > 1  # different draws, different results
    again = reproduce.run_study(settings, runs=3, epochs=2)
    pd.testing.assert_frame_equal(study.runs, again.runs)
    curves = study.loss_curves
    assert len(curves) == 2 * 2 and {"train_loss", "train_loss_se"} <= set(curves.columns)


def test_configs_from_a_saved_sweep_are_its_chosen_rows(tmp_path):
    spec = sweeps.SweepSpec(("tanh",), ("sgd",), {"sgd": {"lr": [0.01, 0.5], "batch_size": [20]}},
                            folds=2, epochs=2, n_train=200)
    folder = jobs.create(sweeps.SWEEP, spec, tmp_path / "sweep")
    runner.Runner(sweeps.SWEEP, folder).run()
    X, y = sweeps.training_data(spec)
    result = sweeps.sweep(X, y, ["tanh"], ["sgd"], spec.grids["sgd"], folds=2, epochs=2)
    configs = reproduce.configs_from_sweep(folder)
    assert configs == {("tanh", "sgd"): result.results[("tanh", "sgd")].best_config}


def test_markdown_table_has_a_row_per_pair():
    summary = pd.DataFrame([{"activation": "tanh", "optimizer": "sgd", "runs": 10, "diverged": 0,
                             "test_acc": 0.98, "test_acc_se": 0.001, "train_acc": 0.99,
                             "train_acc_se": 0.002, "final_loss": 0.01,
                             "paper_test_acc": 0.9849}])
    text = reproduce.markdown_table(summary)
    assert "| tanh | sgd | 98.00 ± 0.10 | 99.00 ± 0.20 | 0.0100 | 98.49 |" in text


@pytest.mark.slow
def test_cli_writes_table_and_figures_for_a_tiny_study(run_cli, tmp_path):
    out = run_cli("reproduce", "--runs", "2", "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    # the same command again finds the study finished and trains nothing
    again = run_cli("reproduce", "--runs", "2", "--epochs", "1", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 9 * 2  # no pair trained twice
    assert out.returncode == 0, out.stderr
    for name in ["summary.csv", "summary.md", "runs.csv", "losses.csv", "fig2_accuracy.html",
                 "fig3_loss.html"]:
        assert (tmp_path / name).stat().st_size > 0, name
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert len(summary) == 9
    assert "\r" not in out.stderr  # not a terminal: no progress bar frames
    assert "| tanh | sgd |" in (tmp_path / "summary.md").read_text()


def test_cli_rejects_a_missing_sweep(run_cli, tmp_path):
    out = run_cli("reproduce", "--settings", str(tmp_path / "nope"), "--out", str(tmp_path))
    assert out.returncode == 2 and "error" in out.stderr
