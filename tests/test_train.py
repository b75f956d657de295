import math

import pytest
import torch

from minidl import Config, Run, train
from minidl.engine.member import DIVERGED_LOSS


def small(**overrides):
    settings = dict(n_train=200, n_test=200, epochs=5, batch_size=10, lr=0.05)
    settings.update(overrides)
    return Config(**settings)


def test_history_has_one_entry_per_epoch_with_all_metrics():
    run = train(small())
    assert [h["epoch"] for h in run.history] == [1, 2, 3, 4, 5]
    frame = run.history_frame()
    assert list(frame.columns) == ["epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                                   "diverged"]
    assert frame[["train_loss", "test_loss"]].gt(0).all().all()
    assert frame[["train_acc", "test_acc"]].apply(lambda c: c.between(0, 1)).all().all()


def test_training_reduces_the_loss():
    run = train(small(epochs=30, optimizer="adam", lr=0.003))
    assert run.history[-1]["train_loss"] < 0.5 * run.history[0]["train_loss"]


def test_same_config_same_history_different_init_seed_differs():
    a, b = train(small()), train(small())
    assert a.history == b.history
    c = train(small(init_seed=1))
    assert c.history != a.history


def test_minibatches_are_reshuffled_every_epoch():
    run = Run(small(batch_size=200, epochs=1))
    orders = []
    real = torch.randperm

    def spy(n, generator=None):
        order = real(n, generator=generator)
        orders.append(order)
        return order
    torch.randperm = spy
    try:
        run.fit(epochs=2)
    finally:
        torch.randperm = real
    assert len(orders) == 2 and not torch.equal(orders[0], orders[1])


def test_callback_can_stop_the_run():
    seen = []
    run = train(small(epochs=10), callback=lambda epoch, m: seen.append(epoch) or epoch < 3)
    assert seen == [1, 2, 3] and run.epoch == 3


def test_diverging_run_stops_and_is_reported_not_raised():
    run = train(small(optimizer="sgd", lr=1e6, epochs=20, activation="relu",
                            batch_size=1))
    assert run.diverged and run.history[-1]["diverged"]
    assert run.epoch < 20
    assert not math.isfinite(run.history[-1]["train_loss"]) or run.history[-1]["diverged"]


def test_learning_rate_change_mid_run_keeps_weights_and_epochs():
    run = Run(small(optimizer="adam", lr=0.01))
    run.fit(epochs=2)
    weights = run.model.param()[0][0].clone()
    run.set_hyperparameters(lr=0.001, beta1=0.8)
    assert torch.equal(run.model.param()[0][0], weights)
    assert run.optimizer.lr == 0.001 and run.optimizer.beta1 == 0.8 and run.epoch == 2
    run.fit(epochs=1)
    assert run.epoch == 3


def test_switching_optimizer_mid_run_keeps_weights():
    run = Run(small())
    run.fit(epochs=1)
    weights = run.model.param()[0][0].clone()
    run.set_hyperparameters(optimizer="rmsprop", lr=0.001)
    assert type(run.optimizer).__name__ == "RMSprop"
    assert torch.equal(run.model.param()[0][0], weights)


@pytest.mark.parametrize("overrides,match", [
    ({"batch_size": 0}, "batch_size"), ({"activation": "gelu"}, "gelu"),
    ({"init": "he"}, "he"), ({"lr": -0.1}, "learning rate"), ({"eps": 0}, "eps"),
    ({"beta1": 1.0, "optimizer": "adam"}, "beta1"), ({"rho": 1.2}, "rho"),
    ({"optimizer": "lbfgs"}, "lbfgs"), ({"hidden": (25, 0)}, "hidden"),
    ({"dataset": "moons"}, "moons"), ({"gain": 0.0}, "gain")])
def test_bad_config_raises_value_error_naming_the_setting(overrides, match):
    with pytest.raises(ValueError, match=match):
        Config(**overrides)


def test_reference_network_learns_the_disk():
    """The seed report's network with Adam reaches ≥ 97 % test accuracy on the full task."""
    run = train(Config(optimizer="adam", lr=0.005, batch_size=20, epochs=60))
    assert run.history[-1]["test_acc"] >= 0.97


def test_run_trains_on_data_it_is_given():
    from minidl import data
    sets = data.train_test("xor", 100, 50, seed=3)
    run = Run(small(dataset="xor", n_train=100, n_test=50, data_seed=3), data_sets=sets)
    assert run.X_train is sets[0] and run.y_test is sets[3]
    assert torch.equal(run.T_train, data.one_hot(sets[1]))


def test_fields_that_need_a_fresh_run_cannot_change_mid_run():
    run = Run(small())
    with pytest.raises(ValueError, match="hidden"):
        run.set_hyperparameters(hidden=(5,))
    assert run.config.hidden == (25, 25, 25)


def test_label_noise_is_validated():
    with pytest.raises(ValueError, match="noise"):
        Config(noise=0.9)


def test_an_exploding_run_with_a_finite_loss_is_diverged_too():
    """A loss of 1e17 is finite but says the run exploded: it stops as diverged."""
    config = Config(n_train=50, n_test=50, epochs=5, activation="identity", gain=1e4, lr=1e-30)
    run = Run(config).fit()
    loss = run.history[-1]["train_loss"]
    assert math.isfinite(loss) and loss > DIVERGED_LOSS
    assert run.diverged and run.epoch == 1 and run.history[-1]["diverged"]


def test_a_population_flags_a_member_whose_loss_exploded():
    from minidl import data
    from minidl.engine import fit as pop
    from minidl.experiments import cv

    X, y = data.disk(60, seed=0)
    rows = torch.arange(40), torch.arange(40, 60)
    # lr 1e-30: the weights stay as drawn (finite); only the loss bound can flag the member
    members = [pop.Member({**cv.complete({"lr": 1e-30, "batch_size": 10, "gain": g}),
                           "activation": "identity", "optimizer": "sgd"}, *rows, seed=0)
               for g in (1.0, 1e4)]
    calm, exploded = pop.fit(X, y, members, [2, 25, 25, 25, 2], 1)
    assert not calm.diverged and exploded.diverged and math.isnan(exploded.eval_acc)
