"""Regression: the ``problem`` setting, the plane and multi-Gaussian data sets, one-output
networks trained with MSE on the value, and what a regression run keeps (metrics, export,
replay, divergence, the command line)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidl import Config, Run, data, hparams, nn
from minidl.engine import export, layers
from minidl.engine.cohort import key
from minidl.engine.member import Member
from minidl.engine.population import Population

REGRESSIONS = ("plane", "multigauss")
ROOT = Path(__file__).resolve().parent.parent


def regression(**changes) -> Config:
    return Config(**{"problem": "regression", "dataset": "plane", "n_train": 300,
                     "n_test": 300, "hidden": (8, 8), "batch_size": 10, "epochs": 3,
                     "optimizer": "adam", "lr": 0.003, **changes})


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("name", REGRESSIONS)
def test_regression_data_sets_give_float_targets_in_minus_one_one(name):
    X, t = data.make(name, 2000, seed=1)
    assert X.dtype == torch.float32 and t.dtype == torch.float32 and t.shape == (2000,)
    assert t.min() >= -1 and t.max() <= 1
    assert t.min() < -0.8 and t.max() > 0.8  # the whole range is used
    assert hparams.problem_of(name) == "regression"


def test_the_plane_is_linear_in_the_position_and_the_bumps_are_signed():
    X = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.25, 0.75]])
    assert data.plane_target(X).tolist() == [-1.0, 1.0, 0.0]
    at_centres = data.multigauss_target(data.BUMP_CENTRES)
    assert torch.equal(at_centres.sign(), data.BUMP_SIGNS)
    assert (at_centres.abs() > 0.8).all()


def test_jitter_moves_regression_points_but_keeps_the_clean_targets():
    X0, t0 = data.make("multigauss", 500, seed=2)
    X1, t1 = data.make("multigauss", 500, seed=2, jitter=0.05)
    assert torch.equal(t0, t1) and 0 < (X1 - X0).abs().max() <= 0.05 + 1e-6


@pytest.mark.parametrize("problem, dataset, message", [
    ("regression", "spiral", r"'spiral' for regression \(expected one of plane, multigauss"),
    ("regression", "custom", r"'custom' for regression"),
    ("classification", "plane", r"'plane' for classification \(expected one of disk, xor"),
])
def test_a_data_set_of_the_other_problem_is_a_clear_error(problem, dataset, message):
    with pytest.raises(ValueError, match=message):
        Config(problem=problem, dataset=dataset)


def test_label_noise_on_regression_is_refused_pointing_to_jitter():
    with pytest.raises(ValueError, match="label noise.*point jitter"):
        regression(noise=0.1)
    with pytest.raises(ValueError, match="label noise"):
        data.make("plane", 10, noise=0.1)


def test_a_regression_network_ends_in_one_output():
    assert regression().sizes() == [2, 8, 8, 1] and Config().sizes()[-1] == 2


@pytest.mark.parametrize("reduction", hparams.LOSS_REDUCTIONS)
def test_one_output_gradients_agree_with_autograd(reduction):
    """The batched network's gradients for MSE on a scalar target, against torch autograd on
    the same weights (the oracle)."""
    sizes = [2, 6, 5, 1]
    net = layers.Network(sizes, ["tanh"], dtype=torch.float64)
    for linear in net.linears:
        linear.init_member(0, torch.Generator().manual_seed(linear.in_features), "xavier", 1.0)
    x = torch.rand(9, 2, dtype=torch.float64)
    t = torch.rand(9, 1, dtype=torch.float64) * 2 - 1
    net.backward(layers.Loss([reduction]).gradient(net.forward(x), t))
    weights = [p.detach().clone().reshape(p.shape[-2:] if p.dim() > 2 else p.shape[-1:])
               for p, _ in net.param()]
    with torch.enable_grad():
        leaves = [w.requires_grad_(True) for w in weights]
        h = x
        for i in range(0, len(leaves), 2):
            h = h @ leaves[i].T + leaves[i + 1]
            if i + 2 < len(leaves):
                h = torch.tanh(h)
        squared = (h - t).square()
        loss = {"mean": squared.mean(), "sum": squared.sum(),
                "batch_mean": squared.sum() / len(x)}[reduction]
        loss.backward()
    for (_, ours), leaf in zip(net.param(), leaves):
        torch.testing.assert_close(ours.reshape(leaf.shape), leaf.grad)
    # the loss itself: minidl's MSE of a one-output network against torch's
    value = nn.LossMSE(reduction).forward(h.detach(), t)
    torch.testing.assert_close(torch.as_tensor(value, dtype=torch.float64), loss.detach())
    if reduction == "mean":
        torch.testing.assert_close(loss.detach(), torch.nn.functional.mse_loss(h.detach(), t))


def test_a_population_measures_the_mse_of_the_value_and_no_accuracy():
    X, t = data.plane(50, seed=0)
    member = Member({"problem": "regression"}, torch.arange(30), torch.arange(30, 50), 0)
    population = Population(X, t, [member], [2, 4, 1])
    measured = population.measure()
    prediction = population.outputs(X)[0, :, 0]
    torch.testing.assert_close(measured["train_loss"][0], (prediction[:30] - t[:30]).square().mean())
    torch.testing.assert_close(measured["eval_loss"][0], (prediction[30:] - t[30:]).square().mean())
    assert measured["train_acc"].isnan().all() and measured["eval_acc"].isnan().all()


def test_a_population_refuses_mixed_problems_and_a_wrong_output_size():
    X, t = data.plane(20, seed=0)
    rows = torch.arange(10), torch.arange(10, 20)
    with pytest.raises(ValueError, match="cannot share a population"):
        Population(X, t, [Member({"problem": "regression"}, *rows, 0), Member({}, *rows, 1)],
                   [2, 4, 1])
    with pytest.raises(ValueError, match="expected 1 output"):
        Population(X, t, [Member({"problem": "regression"}, *rows, 0)], [2, 4, 2])


@pytest.mark.parametrize("name, epochs", [("plane", 15), ("multigauss", 40)])
def test_a_regression_run_learns_far_better_than_a_constant(name, epochs):
    run = Run(regression(dataset=name, epochs=epochs, hidden=(25, 25), inputs="standardised",
                         n_train=500, n_test=500), track_health=False).fit()
    constant = float((run.y_test - run.y_train.mean()).square().mean())  # the best constant
    last = run.history[-1]
    assert not run.diverged and math.isnan(last["test_acc"]) and math.isnan(last["train_acc"])
    assert last["test_loss"] < 0.2 * constant
    assert run.history[0]["test_loss"] > last["test_loss"]


def test_a_regression_run_forms_its_own_cohort():
    classify = Run(Config(hidden=(8, 8), batch_size=10, n_train=300, n_test=300))
    assert key(Run(regression())) != key(classify)


def test_a_diverging_regression_run_is_frozen_not_raised():
    run = Run(regression(optimizer="sgd", lr=1e5, epochs=20, activation="relu"),
              track_health=False).fit()
    assert run.diverged and run.history[-1]["diverged"]
    assert run.epoch < 20


def test_a_regression_run_replays_its_epochs():
    run = Run(regression()).fit()
    then = run.at(1)
    assert then.epoch == 1 and then.history == run.history[:1]
    assert then.predict(run.X_test).shape == (300, 1)
    assert not torch.equal(then.predict(run.X_test), run.predict(run.X_test))


def test_a_regression_run_exports_and_imports():
    run = Run(regression(dataset="multigauss", jitter=0.05)).fit()
    text = export.to_json(run)
    assert json.loads(text)["settings"]["problem"] == "regression"
    back = export.from_json(text)
    assert back.config == run.config and back.config.sizes()[-1] == 1
    assert torch.equal(back.X_train, run.X_train) and torch.equal(back.y_train, run.y_train)
    for (a, _), (b, _) in zip(back.model.param(), run.model.param()):
        assert torch.equal(a, b)
    for ours, theirs in zip(back.history, run.history):
        assert all(same(ours[k], theirs[k]) for k in export.HISTORY_KEYS)
    assert back.metrics()["test_loss"] == run.metrics()["test_loss"]
    assert export.to_json(back) == text


def test_the_exported_script_of_a_regression_run_reports_test_loss():
    script = export.to_script(Run(regression()))
    assert "'problem': 'regression'" in script and "test loss" in script
    compile(script, "script.py", "exec")


@pytest.mark.slow
def test_the_exported_script_retrains_a_regression_to_the_same_final_metrics(tmp_path):
    run = Run(regression(dataset="multigauss", jitter=0.05, epochs=10)).fit()
    script = tmp_path / "retrain.py"
    script.write_text(export.to_script(run), encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""},
                         timeout=120, check=True).stdout
    assert "epoch 10: train loss" in out and "test loss" in out and "accuracy" not in out
    final = json.loads(out.strip().splitlines()[-1].removeprefix("final "))
    assert all(same(final[k], run.history[-1][k]) for k in export.HISTORY_KEYS)


def test_the_cli_trains_a_regression_and_prints_its_test_loss(run_cli):
    out = run_cli("train", "--problem", "regression", "--dataset", "plane", "--n-train", "100",
                  "--n-test", "100", "--epochs", "2", "--every", "1", "--jitter", "0.02")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "2-25-25-25-1" in lines[0]
    assert "test loss" in lines[1] and "acc" not in lines[1]
    assert lines[-1].startswith("final train loss") and "test loss" in lines[-1]


def test_the_cli_names_a_mismatched_data_set(run_cli):
    out = run_cli("train", "--problem", "regression", "--dataset", "disk")
    assert out.returncode != 0 and "'disk' for regression" in out.stdout + out.stderr


def test_the_output_map_of_one_output_is_its_value_on_the_class_scores_colours():
    from minidl.viz import boundary
    out = torch.tensor([[0.25], [-0.5]])
    assert boundary.score_of(out).tolist() == [0.25, -0.5]
    assert boundary.score_of(torch.tensor([[0.2, 0.7]])).tolist() == pytest.approx([0.5])
    run = Run(regression()).fit()
    scores = boundary.scores(run.predict, 10)
    torch.testing.assert_close(scores.reshape(-1), run.predict(boundary.grid(10))[:, 0])


def test_a_regression_run_draws_its_diagram_and_replays_as_a_gif():
    from minidl.viz import network, replay
    run = Run(regression(epochs=2)).fit()
    assert network.run_options(run)["output_range"] == (-1.0, 1.0)
    tables = network.network_data(run.model, 380, input_names=network.input_names(run),
                                  **network.run_options(run))
    assert "out (value)" in set(tables[network.UNITS]["name"])
    assert network.unit_title("3:0", (2, 8, 8, 1)) == "output (value)"
    assert replay.gif(run, most=2, size=60)[:6] == b"GIF89a"
