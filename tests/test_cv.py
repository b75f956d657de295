import math

import pandas as pd
import pytest
import torch

from minidl import data
from minidl.engine import fit as pop
from minidl.experiments import cv


@pytest.fixture(scope="module")
def disk():
    return data.disk(300, seed=0)


def test_kfold_every_sample_in_exactly_one_validation_fold():
    splits = cv.kfold(103, 5, seed=1)
    validation = torch.cat([val for _, val in splits])
    assert sorted(validation.tolist()) == list(range(103))
    sizes = [len(val) for _, val in splits]
    assert max(sizes) - min(sizes) <= 1
    for train, val in splits:
        assert set(train.tolist()).isdisjoint(val.tolist())
        assert len(train) + len(val) == 103


def test_kfold_is_seeded():
    a, b, c = cv.kfold(50, 5, 0), cv.kfold(50, 5, 0), cv.kfold(50, 5, 1)
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(torch.equal(x[1], y[1]) for x, y in zip(a, c))


@pytest.mark.parametrize("n,k", [(10, 1), (3, 5)])
def test_kfold_rejects_bad_arguments(n, k):
    with pytest.raises(ValueError):
        cv.kfold(n, k)


def test_batched_and_sequential_engines_start_alike_and_agree(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 25], "momentum": [0.0, 0.9]}
    batched = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=4, engine="batched")
    sequential = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=4,
                                engine="sequential")
    keys = ["lr", "batch_size", "momentum"]
    merged = batched.table.merge(sequential.table, on=keys, suffixes=("_b", "_s"))
    assert len(merged) == 8
    assert (merged["mean_score_b"] - merged["mean_score_s"]).abs().max() <= 0.005


def test_result_table_columns_and_ranking(disk):
    X, y = disk
    result = cv.grid_search(X, y, "relu", "adam", {"lr": [1e-4, 1e-2], "batch_size": [20],
                                                    "beta1": [0.9]}, folds=4, epochs=3)
    t = result.table
    for column in ["lr", "batch_size", "beta1", "split0_score", "split3_score", "mean_score",
                   "std_score", "rank", "mean_train_loss", "fit_time", "diverged"]:
        assert column in t.columns
    assert "rho" not in t.columns and "momentum" not in t.columns
    splits = t[[f"split{i}_score" for i in range(4)]]
    assert t["mean_score"].tolist() == pytest.approx(splits.mean(axis=1).tolist())
    assert t["std_score"].tolist() == pytest.approx(splits.std(axis=1, ddof=0).tolist())
    assert t["rank"].tolist() == sorted(t["rank"].tolist())
    assert t.iloc[0]["mean_score"] == t["mean_score"].max()
    assert result.best_config == {"lr": t.iloc[0]["lr"], "batch_size": 20, "beta1": 0.9}
    assert isinstance(result.best_config["batch_size"], int)


def test_diverging_members_are_flagged_and_do_not_poison_others(disk):
    X, y = disk
    grid = {"lr": [0.05, 1e5], "batch_size": [5]}
    result = cv.grid_search(X, y, "relu", "sgd", grid, folds=3, epochs=3)
    t = result.table.set_index("lr")
    assert t.loc[1e5, "diverged"] and math.isnan(t.loc[1e5, "mean_score"])
    assert not t.loc[0.05, "diverged"] and t.loc[0.05, "mean_score"] > 0.5
    assert t.loc[1e5, "rank"] == 2
    alone = cv.grid_search(X, y, "relu", "sgd", {"lr": [0.05], "batch_size": [5]}, folds=3,
                           epochs=3)
    assert alone.table.loc[0, "mean_score"] == pytest.approx(t.loc[0.05, "mean_score"])
    assert result.best_config["lr"] == 0.05


@pytest.mark.parametrize("grid,match", [
    ({"lr": []}, "empty"), ({"lr": [-0.1]}, r"Invalid learning rate \(lr\): -0.1"),
    ({"lr": ["fast"]}, "learning rate.*got str"), ({"batch_size": [0]}, r"batch size.*in \[1, "),
    ({"beta1": [1.0]}, r"beta1.*\[0, 1\)"), ({"colour": [1]}, "unknown grid key"),
    ({"lr": [float("nan")]}, "Invalid learning rate"), ({"weight_decay": [-1.0]}, "weight")])
def test_bad_grids_are_rejected_before_anything_runs(disk, grid, match):
    X, y = disk
    with pytest.raises(ValueError, match=match):
        cv.grid_search(X, y, "tanh", "adam", grid, folds=3, epochs=1)




def test_done_rows_are_skipped_and_new_rows_handed_over_as_each_population_ends(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 20]}
    saved, calls = [], []
    first = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, on_rows=saved.append,
                           progress=lambda done, total: calls.append((done, total)))
    assert [len(rows) for rows in saved] == [2, 2]  # one hand-over per batch size
    assert calls[-1][0] == calls[-1][1]
    trained = []
    real_fit = pop.fit
    pop.fit = lambda *a, **k: trained.append(1) or real_fit(*a, **k)
    try:
        again = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2,
                               done_rows=[r for rows in saved for r in rows],
                               progress=lambda done, total: calls.append((done, total)))
    finally:
        pop.fit = real_fit
    assert trained == []
    pd.testing.assert_frame_equal(again.table, first.table, check_dtype=False)


def test_progress_counts_only_this_calls_own_work(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 20]}
    saved = []
    cv.grid_search(X, y, "tanh", "sgd", {**grid, "lr": [0.01]}, folds=3, epochs=2,
                   on_rows=saved.extend)
    calls = []
    cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, done_rows=saved,
                   progress=lambda done, total: calls.append((done, total)))
    splits = cv.kfold(len(y), 3, 0)
    todo = sum(cv.config_steps({"lr": 0.1, "batch_size": b}, splits, 2) for b in (10, 20))
    assert {t for _, t in calls} == {todo} and calls[-1] == (todo, todo)


def test_cancel_keeps_the_finished_populations_rows(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 20]}
    saved = []

    def cancel_in_second_population(done, total):
        return done < total * 0.6  # batch 10 costs 2/3 of the work: stop after it
    with pytest.raises(pop.Cancelled):
        cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, on_rows=saved.extend,
                       progress=cancel_in_second_population)
    assert len(saved) == 2 and {r["batch_size"] for r in saved} == {10}
    resumed = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, done_rows=saved)
    assert len(resumed.table) == 4


def test_a_configuration_is_recognised_however_many_defaults_it_spells_out():
    assert cv.config_id({"lr": 0.1}) == cv.config_id({"lr": 0.1, "momentum": 0.0,
                                                      "weight_decay": 0.0, "batch_size": 1})
    assert cv.config_id({"lr": 0.1, "batch_size": 20.0}) == cv.config_id({"lr": 0.1,
                                                                          "batch_size": 20})
    assert cv.config_id({"lr": 0.1}) != cv.config_id({"lr": 0.1, "weight_decay": 1e-4})
