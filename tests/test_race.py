"""The race engine (minidl.race): contestants trained side by side follow exactly the runs
the Playground would train, whatever population they share."""

import math

import pytest
import torch
from helpers import wait_until

from minidl import Config, Run, hparams
from minidl.experiments import contestants as entrants
from minidl.experiments import race, reproduce
from minidl.experiments.race import Race
from ui.background import Trainer

SMALL = dict(n_train=60, n_test=40, epochs=50)


def paper(**base) -> list[Config]:
    return entrants.preset("paper", Config(**{**SMALL, **base}))


def assert_same_trajectory(history: list[dict], run_history: list[dict]) -> None:
    assert [h["epoch"] for h in history] == [h["epoch"] for h in run_history]
    for ours, theirs in zip(history, run_history):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
        assert ours["diverged"] == theirs["diverged"]


def test_every_contestant_follows_the_trajectory_of_its_playground_run():
    contestants = paper()
    match = Race(contestants).fit(epochs=3)
    assert len(match.populations) < len(contestants)  # mixed activations and optimizers share
    for i, config in enumerate(contestants):
        run = Run(config)
        for _ in range(3):
            run.train_epoch()
        assert_same_trajectory(match.contestant_history(i), run.history)
        theirs = torch.cat([p.reshape(-1) for p, _ in run.model.param()])
        index, k = match._where[i]
        ours = torch.cat([p[k].reshape(-1) for p, _ in match.populations[index].network.param()])
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_a_race_trained_in_slices_of_time_equals_one_trained_by_epochs():
    contestants = paper()
    whole = Race(contestants).fit(epochs=2)
    sliced = Race(contestants)
    calls = 0
    while sliced.epoch < 2:
        sliced.train_steps(max_seconds=0.0)  # one minibatch a call
        calls += 1
    assert calls > 2 * 60  # the batch-1 population alone takes 60 steps an epoch
    assert sliced.history == whole.history


def test_mixed_populations_train_as_separate_races_of_one():
    contestants = paper()
    together = Race(contestants).fit(epochs=2)
    for i, config in enumerate(contestants):
        alone = Race([config]).fit(epochs=2)
        assert_same_trajectory(together.contestant_history(i), alone.contestant_history(0))


def test_contestants_with_one_architecture_start_from_the_same_weights():
    contestants = entrants.preset("optimizers", Config(**SMALL))
    match = Race(contestants)
    (population,) = match.populations
    first = torch.stack([p[0] for p, _ in population.network.param()[:1]])
    for p, _ in population.network.param():
        assert torch.equal(p[0], p[1]) and torch.equal(p[1], p[2])
    assert first.abs().sum() > 0


def test_each_optimizers_members_are_contiguous_and_share_one_optimizer():
    contestants = paper()
    match = Race(contestants)
    for population, group in zip(match.populations, match.groups):
        kinds = [contestants[i].optimizer for i in group]
        assert len(population.optimizers) == len(set(kinds))
        for optimizer, start, stop in population.optimizers:
            assert {kinds[k] for k in range(start, stop)} == {optimizer.name}


def test_a_diverging_contestant_is_frozen_and_the_others_train_on():
    base = Config(**SMALL)
    contestants = [base, base.replace(lr=1000.0, loss="sum"), base.replace(activation="relu")]
    match = Race(contestants).fit(epochs=4)
    assert match.out() == {1}
    rows = match.contestant_history(1)
    assert rows[-1]["diverged"] and all(not r["diverged"] for r in rows[:-1])
    assert len(rows) < 4  # no rows after it diverged
    for i in (0, 2):
        assert len(match.contestant_history(i)) == 4
        assert not any(r["diverged"] for r in match.contestant_history(i))
    for p, _ in match.model.param():
        assert torch.isfinite(p).all()
    table = race.standings(match, 0.9)
    assert table.iloc[-1]["contestant"] == 1 and table.iloc[-1]["diverged"]
    assert math.isnan(table.iloc[-1]["test_acc"])
    assert_same_trajectory(match.contestant_history(0), Run(base).fit(epochs=4).history)


def test_a_race_whose_every_contestant_diverged_stops():
    base = Config(**SMALL, lr=1000.0, loss="sum")
    match = Race([base]).fit()
    assert match.diverged and match.epoch < SMALL["epochs"]
    with pytest.raises(RuntimeError, match="diverged"):
        match.train_steps()


@pytest.mark.parametrize("configs, message", [
    ([], "Invalid number of contestants: 0"),
    ([Config(**SMALL)] * 10, "Invalid number of contestants: 10"),
    ([Config(**SMALL), Config(**{**SMALL, "data_seed": 1})], "share the data seed"),
    ([Config(**SMALL), Config(**{**SMALL, "epochs": 7})], "share the epoch budget"),
    ([Config(**{**SMALL, "problem": "regression", "dataset": "plane"})],
     r"a race cannot take a regression: regression runs in the Playground and in minidl "
     r"train \(--problem regression\); races, sweeps and studies rank classifiers"),
])
def test_bad_contestants_get_clear_messages(configs, message):
    with pytest.raises(ValueError, match=message):
        Race(configs)


@pytest.mark.parametrize("text, message", [
    ("", "none given"),
    ("lr=-1", r"Contestant 1: Invalid learning rate \(lr\): -1"),
    ("lr=0.1\nspeed=3", r"Invalid contestant 2: 'speed=3'"),
    ("relu", "expected name=value"),
    ("data_seed=3", "shared by the whole race"),
    ("\n".join(["lr=0.1"] * 10), "10 lines"),
    ("x" * (hparams.MAX_TEXT + 1), "text of at most"),
])
def test_bad_hand_made_contestants_get_clear_messages(text, message):
    with pytest.raises(ValueError, match=message):
        entrants.parse_contestants(text)


def test_hand_made_contestants_change_only_what_they_say():
    base = Config(**SMALL)
    a, b = entrants.preset("custom", base, contestants="activation=relu lr=0.001; optimizer=adam")
    assert (a.activation, a.lr, a.optimizer) == ("relu", 0.001, "sgd")
    assert (b.activation, b.lr, b.optimizer) == ("tanh", base.lr, "adam")
    assert entrants.labels([a, b]) == ["SGD + ReLU", "Adam + Tanh"]  # the pairs tell them apart
    assert entrants.details([a, b]) == ["lr 0.001", "lr 0.01"]
    assert entrants.labels([a, a, b.replace(activation="relu", optimizer="sgd")]) == [
        "SGD + ReLU, lr 0.001", "SGD + ReLU, lr 0.001 #2", "SGD + ReLU, lr 0.01"]


def test_the_papers_preset_takes_table_one_and_the_other_presets_vary_one_setting():
    base = Config(**SMALL, momentum=0.9, init_seed=7)
    contestants = entrants.preset("paper", base)
    assert [(c.activation, c.optimizer) for c in contestants] == list(reproduce.PAPER_CONFIGS)
    for c, settings in zip(contestants, reproduce.PAPER_CONFIGS.values()):
        assert all(getattr(c, k) == v for k, v in settings.items())
        assert c.momentum == 0.0 and c.init_seed == 7  # Table I's optimizer, the base's seeds
    assert [c.lr for c in entrants.preset("lrs", base)] == list(hparams.TABLE["lr"].grid["*"])
    assert [c.optimizer for c in entrants.preset("optimizers", base)] == list(hparams.OPTIMIZERS)
    assert [c.activation for c in entrants.preset("activations", base)] == list(
        hparams.REPORT_ACTIVATIONS)
    sweep = {("relu", "adam"): {"lr": 0.003, "batch_size": 10, "beta1": 0.8}}
    (chosen,) = entrants.preset("cv", base, sweep_configs=sweep)
    assert (chosen.activation, chosen.optimizer, chosen.lr, chosen.batch_size, chosen.beta1) == (
        "relu", "adam", 0.003, 10, 0.8)
    with pytest.raises(ValueError, match="saved sweep"):
        entrants.preset("cv", base)


def test_standings_rank_by_accuracy_and_note_when_the_target_was_reached():
    match = Race(entrants.preset("lrs", Config(**SMALL))).fit(epochs=5)
    table = race.standings(match, 0.6)
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["test_acc"]) == sorted(table["test_acc"], reverse=True)
    history = match.history_frame()
    for _, row in table.iterrows():
        mine = history[history["contestant"] == row["contestant"]]
        reached = mine[mine["test_acc"] >= 0.6]["epoch"]
        if reached.empty:
            assert math.isnan(row["reached"])
        else:
            assert row["reached"] == reached.min()
    assert race.winner(match, 0.6) == table.iloc[0]["name"]


def test_a_race_trains_in_the_background_like_in_the_foreground():
    contestants = entrants.preset("activations", Config(**{**SMALL, "epochs": 4}))
    trainer = Trainer(Race(contestants))
    trainer.step()
    wait_until(lambda: trainer.state == "idle", timeout=30)
    assert trainer.run.epoch == 1
    trainer.train()
    wait_until(lambda: trainer.state == "idle", timeout=30)
    assert trainer.run.epoch == 4
    assert trainer.run.history == Race(contestants).fit().history
    frozen = trainer.view()
    assert [o.shape for o in frozen.predict_all(torch.rand(7, 2))] == [(7, 2)] * 3
