"""minidl.population: many networks as one batched population, and parallel tasks."""

import pytest
import torch

from minidl import cv, data
from minidl import population as pop


@pytest.fixture(scope="module")
def disk():
    return data.disk(300, seed=0)


def test_population_members_match_their_sequential_twins_exactly(disk):
    """Same seed → same initial weights and minibatch order → (nearly) the same final model."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": lr, "batch_size": 7}), train, val, seed=f)
               for lr in (0.01, 0.1) for f, (train, val) in enumerate(splits)]
    a = pop.fit(X, y, members, cv.SIZES, "relu", "adam", 3, batched=True, history=True)
    b = pop.fit(X, y, members, cv.SIZES, "relu", "adam", 3, batched=False, history=True)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
        assert ra.train_loss_history == pytest.approx(rb.train_loss_history, rel=1e-4)


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


def test_one_cost_function_counts_optimizer_steps():
    assert pop.steps(1000, 1, 2) == 2000 and pop.steps(1000, 30, 1) == 34
    member = pop.Member(cv.complete({"batch_size": 7}), torch.arange(20), torch.arange(5), 0)
    assert pop.work_units(member, 3) == pop.steps(20, 7, 3) == 9


def test_weight_decay_is_applied_per_member_in_a_population(disk):
    """A population with λ per member trains each member as its own twin would."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.05, "batch_size": 10, "weight_decay": wd}),
                          train, val, seed=f)
               for wd in (0.0, 0.1) for f, (train, val) in enumerate(splits)]
    a = pop.fit(X, y, members, cv.SIZES, "tanh", "sgd", 2, batched=True)
    b = pop.fit(X, y, members, cv.SIZES, "tanh", "sgd", 2, batched=False)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
    assert a[0].train_loss != pytest.approx(a[3].train_loss, rel=1e-3)


def test_checkpoints_record_the_accuracy_a_full_history_would(disk):
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.05, "batch_size": 20}), train, val, seed=f)
               for f, (train, val) in enumerate(splits)]
    full = pop.fit(X, y, members, cv.SIZES, "tanh", "sgd", 4, history=True)
    sparse = pop.fit(X, y, members, cv.SIZES, "tanh", "sgd", 4, checkpoints=[2, 4])
    for a, b in zip(full, sparse):
        assert b.eval_acc_at == {2: a.eval_acc_history[1], 4: a.eval_acc_history[3]}
        assert b.eval_acc_history == [] and b.eval_acc == a.eval_acc


def test_l1_is_applied_per_member_in_a_population(disk):
    """A population with λ₁ per member trains each member as its own twin would."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    members = [pop.Member(cv.complete({"lr": 0.01, "batch_size": 10, "l1": l1}),
                          train, val, seed=f)
               for l1 in (0.0, 0.01) for f, (train, val) in enumerate(splits)]
    for optimizer in ("sgd", "adam"):
        a = pop.fit(X, y, members, cv.SIZES, "tanh", optimizer, 2, batched=True)
        b = pop.fit(X, y, members, cv.SIZES, "tanh", optimizer, 2, batched=False)
        for ra, rb in zip(a, b):
            assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
        assert a[0].train_loss != pytest.approx(a[3].train_loss, rel=1e-3)


def test_a_population_sees_the_features_a_run_would(disk):
    """With input features, batched members match their sequential twins, and the features
    change what is learnt; sizes must take as many inputs as there are features."""
    X, y = disk
    splits = cv.kfold(len(y), 3, seed=0)
    features = ("x1", "x1sq", "x2sq", "sinx2")
    members = [pop.Member(cv.complete({"lr": 0.01, "batch_size": 10, "inputs": inputs}),
                          train, val, seed=f)
               for inputs in ("raw", "standardised") for f, (train, val) in enumerate(splits)]
    sizes = [len(features), *cv.SIZES[1:]]
    a = pop.fit(X, y, members, sizes, "tanh", "adam", 2, batched=True, features=features)
    b = pop.fit(X, y, members, sizes, "tanh", "adam", 2, batched=False, features=features)
    for ra, rb in zip(a, b):
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4)
    plain = pop.fit(X, y, members, cv.SIZES, "tanh", "adam", 2)
    assert a[0].train_loss != pytest.approx(plain[0].train_loss, rel=1e-3)
    with pytest.raises(ValueError, match="cannot take 4 features"):
        pop.fit(X, y, members, cv.SIZES, "tanh", "adam", 2, features=features)
