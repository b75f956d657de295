import math

import pandas as pd
import pytest
import torch

from minidl import cv, data
from minidl import population as pop


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


def test_population_members_match_their_sequential_twins_exactly(disk):
    """Same seed → same initial weights and minibatch order → (nearly) the same final model."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(dict(cv.DEFAULTS, lr=lr, batch_size=7), train, val, seed=f)
               for lr in (0.01, 0.1) for f, (train, val) in enumerate(splits)]
    a = pop.fit(X, y, members, cv.SIZES, "relu", "adam", 3, batched=True, history=True)
    b = pop.fit(X, y, members, cv.SIZES, "relu", "adam", 3, batched=False, history=True)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
        assert ra.train_loss_history == pytest.approx(rb.train_loss_history, rel=1e-4)


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
    assert result.best_params == {"lr": t.iloc[0]["lr"], "batch_size": 20, "beta1": 0.9}
    assert isinstance(result.best_params["batch_size"], int)


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
    assert result.best_params["lr"] == 0.05


def test_sweep_builds_table_one_layout(disk):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [20], "beta1": [0.9], "rho": [0.9]}
    result = cv.sweep(X, y, ["relu", "tanh"], ["sgd", "adam", "rmsprop"], grid, folds=3, epochs=2)
    assert set(result.results) == {(a, o) for a in ("relu", "tanh")
                                   for o in ("sgd", "adam", "rmsprop")}
    optimal = result.optimal
    assert list(optimal.index) == ["relu", "tanh"]
    assert list(optimal.columns) == [
        "sgd lr", "sgd batch_size", "sgd momentum", "sgd accuracy",
        "adam lr", "adam batch_size", "adam beta1", "adam beta2", "adam eps", "adam accuracy",
        "rmsprop lr", "rmsprop batch_size", "rmsprop rho", "rmsprop eps", "rmsprop accuracy"]
    for (a, o), r in result.results.items():
        assert optimal.loc[a, f"{o} accuracy"] == pytest.approx(r.table["mean_score"].max())
        assert optimal.loc[a, f"{o} lr"] == r.best_params["lr"]
    assert len(result.table) == 2 * (2 + 2 + 2)


def test_store_writes_rows_and_resume_skips_finished_work(disk, tmp_path):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 20]}
    calls = []
    first = cv.sweep(X, y, ["tanh"], ["sgd"], grid, folds=3, epochs=2, store=tmp_path,
                     progress=lambda done, total: calls.append((done, total)))
    stored = pd.read_csv(tmp_path / "tanh-sgd.csv")
    assert len(stored) == 4
    assert calls[-1][0] == calls[-1][1]
    # a second run trains nothing, and reports the same table
    trained = []
    real_fit = pop.fit
    pop.fit = lambda *a, **k: trained.append(1) or real_fit(*a, **k)
    try:
        again = cv.sweep(X, y, ["tanh"], ["sgd"], grid, folds=3, epochs=2, store=tmp_path)
    finally:
        pop.fit = real_fit
    assert trained == []
    pd.testing.assert_frame_equal(again.table.drop(columns="fit_time"),
                                  first.table.drop(columns="fit_time"), check_dtype=False)
    assert cv.load_sweep(tmp_path).optimal.equals(again.optimal)


def test_cancel_keeps_finished_populations_and_resume_completes(disk, tmp_path):
    X, y = disk
    grid = {"lr": [0.01, 0.1], "batch_size": [10, 20]}
    store = tmp_path / "run.csv"

    def cancel_in_second_population(done, total):
        return done < total * 0.6  # batch 10 costs 2/3 of the work: stop after it
    with pytest.raises(pop.Cancelled):
        cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, store=store,
                       progress=cancel_in_second_population)
    assert len(pd.read_csv(store)) == 2
    resumed = cv.grid_search(X, y, "tanh", "sgd", grid, folds=3, epochs=2, store=store)
    assert len(resumed.table) == 4 and len(pd.read_csv(store)) == 4


@pytest.mark.parametrize("grid,match", [
    ({"lr": []}, "empty"), ({"lr": [-0.1]}, "out of range"), ({"lr": ["fast"]}, "not a finite"),
    ({"batch_size": [0]}, "positive integer"), ({"beta1": [1.0]}, "out of range"),
    ({"colour": [1]}, "unknown grid key"), ({"lr": [float("nan")]}, "not a finite")])
def test_bad_grids_are_rejected_before_anything_runs(disk, grid, match):
    X, y = disk
    with pytest.raises(ValueError, match=match):
        cv.grid_search(X, y, "tanh", "adam", grid, folds=3, epochs=1)


def test_default_grids_cover_the_reports_table_one_values():
    g = cv.DEFAULT_GRIDS
    for o in ("sgd", "adam", "rmsprop"):
        assert {1e-4, 1e-3, 1e-2, 1e-1} <= set(g[o]["lr"])
        assert {1, 10, 20} <= set(g[o]["batch_size"])
    assert {0.8, 0.9} <= set(g["adam"]["beta1"]) and {0.99, 0.999} <= set(g["adam"]["beta2"])
    assert {1e-9, 1e-8} <= set(g["adam"]["eps"]) and {1e-9, 1e-8} <= set(g["rmsprop"]["eps"])
    assert {0.9, 0.99} <= set(g["rmsprop"]["rho"])
    assert max(g["sgd"]["lr"]) >= 1.0  # what Sigmoid needs
    assert max(cv.default_grid_for("sigmoid", "sgd")["gain"]) > 1
    assert "gain" not in cv.default_grid_for("tanh", "adam")


def test_estimates_count_members_and_steps():
    grid = {"lr": [0.1, 0.01], "batch_size": [1, 10], "rho": [0.9]}
    assert cv.estimate_members(grid, "rmsprop", 5) == 20
    assert cv.estimate_steps(grid, "rmsprop", 5, 2, 100) == 2 * 5 * 2 * (100 + 10)


def test_run_parallel_keeps_order_sums_progress_and_cancels_everything():
    def task(value, steps):
        def run(report):
            for i in range(1, steps + 1):
                if report(i, steps) is False:
                    raise pop.Cancelled()
            return value
        return run

    seen = []
    results = pop.run_parallel([task("a", 3), task("b", 5)], [3, 5],
                               progress=lambda d, t: seen.append((d, t)), workers=2)
    assert results == ["a", "b"]
    assert seen[-1] == (8, 8) and all(t == 8 for _, t in seen)
    started = []

    def cancel_early(done, total):
        started.append(done)
        return done < 2
    with pytest.raises(pop.Cancelled):
        pop.run_parallel([task("a", 100), task("b", 100)], [100, 100], progress=cancel_early,
                         workers=2)
    assert max(started) < 10  # both tasks stopped soon after the first refusal


def test_store_refuses_other_folds_and_other_grid_keys_instead_of_mixing_them(disk, tmp_path):
    X, y = disk
    store = tmp_path / "search.csv"
    cv.grid_search(X, y, "tanh", "sgd", {"lr": [0.1], "batch_size": [20]}, folds=3, epochs=1,
                   store=store)
    with pytest.raises(ValueError, match="folds"):
        cv.grid_search(X, y, "tanh", "sgd", {"lr": [0.1], "batch_size": [20]}, folds=2,
                       epochs=1, store=store)
    # the same configuration written out in full is recognised as done...
    trained = []
    real_fit = pop.fit
    pop.fit = lambda *a, **k: trained.append(1) or real_fit(*a, **k)
    try:
        cv.grid_search(X, y, "tanh", "sgd", {"lr": [0.1], "batch_size": [20], "momentum": [0.0]},
                       folds=3, epochs=1, store=store)
    finally:
        pop.fit = real_fit
    assert trained == []
    # ...and a new key's values are refused rather than written under the wrong columns
    with pytest.raises(ValueError, match="other grid keys"):
        cv.grid_search(X, y, "tanh", "sgd", {"lr": [0.1], "batch_size": [20], "gain": [2.0]},
                       folds=3, epochs=1, store=store)
    assert len(pd.read_csv(store)) == 1


def test_an_error_in_one_parallel_task_stops_the_others():
    reports = []

    def failing(report):
        raise RuntimeError("boom")

    def long_task(report):
        for i in range(1, 10_000):
            reports.append(i)
            if report(i, 10_000) is False:
                raise pop.Cancelled()
            import time
            time.sleep(0.001)
        return "done"
    with pytest.raises(RuntimeError, match="boom"):
        pop.run_parallel([failing, long_task], [1, 10_000], workers=2)
    assert len(reports) < 5_000
