"""A run keeps its weights at its epochs' ends, thinned evenly within a byte budget, and
``Run.at(epoch)`` replays them exactly (minidl.engine.snapshots)."""

import pytest
import torch

from minidl import Config, Run, nn
from minidl.engine import export
from minidl.engine.snapshots import MAX_BYTES, Snapshots, flat

SMALL = dict(n_train=40, n_test=20, hidden=(8, 8), batch_size=4)


def tiny_model(value: float) -> nn.Sequential:
    """A 2-3-2 network whose every weight is ``value``: 17 floats, 68 bytes a snapshot."""
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2))
    for p, _ in model.param():
        p.fill_(value)
    return model


def record(snapshots: Snapshots, epochs: range) -> Snapshots:
    for epoch in epochs:
        snapshots.record(epoch, tiny_model(epoch))
    return snapshots


def test_every_epoch_is_kept_while_they_fit():
    snapshots = record(Snapshots(max_bytes=68 * 10), range(1, 11))
    assert snapshots.epochs == list(range(1, 11)) and snapshots.every == 1
    assert torch.equal(snapshots.weights(7), torch.full((17,), 7.0))


def test_thinning_keeps_the_first_and_the_last_epoch_and_every_kth_between():
    snapshots = record(Snapshots(max_bytes=68 * 10), range(1, 36))
    epochs = snapshots.epochs  # ten fit: every epoch to 10, every 2nd to 18, every 4th since
    assert epochs[0] == 1 and epochs[-1] == 35
    assert snapshots.every == 4 and epochs[1:-1] == list(range(4, 33, 4))
    for epoch in epochs:  # each kept epoch has its own weights
        assert torch.equal(snapshots.weights(epoch), torch.full((17,), float(epoch)))


@pytest.mark.parametrize("budget", [4, 10, 64])
def test_the_snapshots_never_outgrow_their_byte_budget_and_cover_the_whole_run(budget):
    snapshots = Snapshots(max_bytes=68 * budget)
    for epoch in range(1, 1001):
        snapshots.record(epoch, tiny_model(epoch))
        assert snapshots.nbytes <= snapshots.max_bytes
        assert snapshots.epochs[0] == 1 and snapshots.epochs[-1] == epoch
    every = snapshots.every  # evenly spread: the ends and the multiples of every
    assert snapshots.epochs == sorted({1, 1000, *range(every, 1001, every)})
    assert len(snapshots) > budget // 2  # thinned by halves, never to a handful


def test_a_run_keeps_every_epoch_of_the_default_network_within_2_mib():
    run = Run(Config(**SMALL, epochs=12)).fit()
    assert run.snapshots.epochs == list(range(1, 13))
    assert torch.equal(run.snapshots.weights(12), flat(run.model))
    assert MAX_BYTES == 2 << 20
    per_epoch = 4 * nn.parameter_count(Run(Config()).model)  # 2-25-25-25-2: 5,708 bytes
    assert MAX_BYTES // per_epoch >= 300  # the default 200-epoch budget is kept whole


def test_a_replayed_epoch_is_the_run_trained_to_that_epoch_alone():
    config = Config(**SMALL, epochs=30)
    run = Run(config).fit()
    then = run.at(11)
    alone = Run(config).fit(epochs=11)
    for (replayed, _), (trained, _) in zip(then.model.param(), alone.model.param()):
        assert torch.equal(replayed, trained)
    assert then.epoch == 11 and then.history == alone.history
    assert then.health == [h for h in run.health if h["epoch"] <= 11]
    assert torch.equal(then.predict(run.X_test), alone.predict(run.X_test))


def test_a_replay_never_changes_the_run_and_cannot_train():
    run = Run(Config(**SMALL, epochs=8)).fit()
    weights, history = flat(run.model), list(run.history)
    then = run.at(3)
    for p, _ in then.model.param():
        p.zero_()
    assert torch.equal(flat(run.model), weights) and run.history == history
    assert run.epoch == 8 and run.snapshots.epochs == list(range(1, 9))
    with pytest.raises(AttributeError):
        then.train_steps()  # it has no population to train
    with pytest.raises(ValueError, match="not kept"):
        run.at(9)


def test_an_imported_run_replays_from_its_import_on():
    run = Run(Config(**SMALL, epochs=20)).fit(epochs=5)
    imported = export.from_json(export.to_json(run))
    assert imported.snapshots.epochs == [5]
    assert torch.equal(imported.snapshots.weights(5), flat(run.model))
    imported.fit(epochs=2)
    assert imported.snapshots.epochs == [5, 6, 7]
