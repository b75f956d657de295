"""Cohorts (minidl.engine.cohort): visitors' runs co-batched in one population follow the
trajectories they would follow alone, and split back where they are."""

import pytest
import torch
from test_race import assert_same_trajectory

from minidl import Config, Run
from minidl.engine.cohort import Cohort, cohorts, key
from minidl.engine.population import Population

SMALL = dict(n_train=60, n_test=40, epochs=50)
# one shape of work, everything else different: data set and draw, optimizer, activation,
# learning rate, momentum, regularisation, encodings, seed
VISITORS = [Config(**SMALL),
            Config(**SMALL, dataset="xor", optimizer="adam", lr=0.01, activation="relu"),
            Config(**SMALL, dataset="spiral", optimizer="rmsprop", activation="sigmoid",
                   init_seed=7, weight_decay=1e-3),
            Config(**SMALL, optimizer="sgd", momentum=0.9, lr=0.01, data_seed=3, l1=1e-4),
            Config(**SMALL, dataset="gaussians", optimizer="adam", inputs="standardised",
                   targets="signed", loss="sum")]


def weights(run: Run) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p, _ in run.model.param()])


def trained(config: Config, epochs: int) -> Run:
    run = Run(config)
    for _ in range(epochs):
        run.train_epoch()
    return run


def assert_same_run(ours: Run, theirs: Run) -> None:
    assert ours.epoch == theirs.epoch
    assert_same_trajectory(ours.history, theirs.history)
    # batched matmuls add in another order: RMSProp's division by √v amplifies that
    # rounding to ~2e-5 in a few weights; a wrong setting or row moves them by far more
    torch.testing.assert_close(weights(ours), weights(theirs), rtol=1e-4, atol=1e-4)


def test_runs_of_a_cohort_follow_the_trajectories_they_follow_alone():
    runs = [Run(c) for c in VISITORS]
    runs[1].train_epoch()  # Adam with a step count of its own: its bias correction differs
    cohort = Cohort(runs)
    assert len(cohort.population) == len(VISITORS)
    epochs = 0
    while epochs < 3:
        epochs += cohort.train_steps(max_seconds=0.0)  # one minibatch a call
    for run, config in zip(cohort.split(), VISITORS):
        assert len(run.population) == 1 and run.member == 0
        alone = trained(config, 4 if config is VISITORS[1] else 3)
        assert_same_run(run, alone)
        # layer health as alone, on the member's own weights (epoch 1: always recorded)
        ours, theirs = ([h for h in r.health if h["epoch"] == 1] for r in (run, alone))
        assert ours and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.pop("layer") == b.pop("layer")
            assert a == pytest.approx(b, rel=1e-3, abs=1e-6, nan_ok=True)


def test_a_run_split_from_a_cohort_mid_epoch_goes_on_exactly_alone_and_can_rejoin():
    runs = [Run(c) for c in VISITORS[:3]]
    cohort = Cohort(runs)
    for _ in range(25):
        assert not cohort.train_steps(max_seconds=0.0)
    first, *others = cohort.split()
    while first.train_steps(max_seconds=0.0) is None:  # alone to the end of its epoch
        pass
    again = cohorts(others)  # the others are at one row: one cohort again
    assert len(again) == 1 and len(again[0]) == 2
    while not again[0].train_steps():
        pass
    again[0].split()
    rejoined = cohorts(runs)  # every one between epochs now
    assert len(rejoined) == 1
    while not rejoined[0].train_steps():
        pass
    for run, config in zip(rejoined[0].split(), VISITORS):
        assert_same_run(run, trained(config, 2))


def test_only_runs_of_one_shape_and_place_share_a_cohort():
    wide = Run(Config(**SMALL, hidden=(8, 8)))
    batched = Run(Config(**SMALL, batch_size=20))
    featured = Run(Config(**SMALL, features=("x1", "x2", "x1sq", "x2sq")))
    plain = [Run(c) for c in VISITORS[:2]]
    plain[0].train_steps(max_seconds=0.0)  # in the middle of its epoch
    groups = cohorts([wide, batched, featured, *plain])
    assert [len(g) for g in groups] == [1, 1, 1, 1, 1]
    assert len({key(r) for r in (wide, batched, featured, plain[0])}) == 4
    with pytest.raises(ValueError, match="different places"):
        Population.combine([(plain[0].population, 0), (plain[1].population, 0)])
    with pytest.raises(ValueError, match="different shapes"):
        Population.combine([(wide.population, 0), (plain[1].population, 0)])


def test_a_diverging_run_is_frozen_and_its_cohort_trains_on():
    wild = Config(**SMALL, lr=50.0, momentum=0.9)
    runs = [Run(wild), Run(VISITORS[0])]
    cohort = Cohort(runs)
    while not runs[0].diverged:
        while not cohort.train_steps():
            pass
    assert not runs[1].diverged
    assert bool((weights(runs[0]) == 0).all())  # frozen: zeroed, no NaN travels on
    epochs = runs[1].epoch
    while not cohort.train_steps():
        pass
    assert_same_run(cohort.split()[1], trained(VISITORS[0], epochs + 1))


def test_a_cohorts_outputs_are_each_runs_own_over_any_points():
    runs = [Run(c) for c in VISITORS]
    cohort = Cohort(runs)
    while not cohort.train_steps():
        pass
    X = torch.rand(3000, 2)  # more than one slice of rows
    out = cohort.population.outputs(X, rows=1000)
    assert out.shape == (len(runs), 3000, 2)
    for run in runs:
        with torch.inference_mode():
            torch.testing.assert_close(out[run.member], run.predict(X), rtol=1e-4, atol=1e-5)
