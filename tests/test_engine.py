"""minidl.engine: the batched network is minidl.nn's maths member by member, and the
population — the one training loop — trains a member exactly as a plain loop over
minidl.nn and minidl.optim would."""

import pytest
import torch

from minidl import data, nn, optim
from minidl.engine import layers
from minidl.engine.member import Member
from minidl.engine.population import Population


def test_a_batched_linear_layer_equals_independent_layers():
    for batch in (1, 6):  # one row per member takes the outer-product path
        members = [nn.Linear(3, 4, dtype=torch.float64) for _ in range(5)]
        for i, m in enumerate(members):
            m.init_params("xavier", 1.0, torch.Generator().manual_seed(i))
        pop = layers.Linear(5, 3, 4, dtype=torch.float64)
        pop.weight.copy_(torch.stack([m.weight for m in members]))
        pop.bias.copy_(torch.stack([m.bias for m in members]).unsqueeze(1))
        x = torch.randn(5, batch, 3, dtype=torch.float64)
        g = torch.randn(5, batch, 4, dtype=torch.float64)
        y = pop.forward(x)
        gx = pop.backward(g)
        for i, m in enumerate(members):
            torch.testing.assert_close(y[i], m.forward(x[i]))
            torch.testing.assert_close(gx[i], m.backward(g[i]))
            torch.testing.assert_close(pop.grad_weight[i], m.grad_weight)
            torch.testing.assert_close(pop.grad_bias[i, 0], m.grad_bias)


def test_a_batched_layer_draws_each_members_weights_as_a_lone_layer_would():
    pop = layers.Linear(3, 4, 5)
    for i in range(3):
        pop.init_member(i, torch.Generator().manual_seed(i), "xavier", 2.0, init_dist="uniform")
        alone = nn.Linear(4, 5)
        alone.init_params("xavier", 2.0, torch.Generator().manual_seed(i), init_dist="uniform")
        assert torch.equal(pop.weight[i], alone.weight) and torch.equal(pop.bias[i, 0], alone.bias)


def test_each_members_loss_gradient_is_its_own_reductions():
    pred, target = torch.randn(3, 4, 2, dtype=torch.float64), torch.randn(3, 4, 2, dtype=torch.float64)
    reductions = ["sum", "mean", "batch_mean"]
    grads = layers.Loss(reductions).gradient(pred, target)
    for i, reduction in enumerate(reductions):
        single = nn.LossMSE(reduction=reduction)
        single.forward(pred[i], target[i])
        torch.testing.assert_close(grads[i], single.backward())
    shared = layers.Loss(["mean"] * 3).gradient(pred, target)
    for i in range(3):
        single = nn.LossMSE()
        single.forward(pred[i], target[i])
        torch.testing.assert_close(shared[i], single.backward())


def test_per_member_activations_match_each_activation_alone():
    names = ["relu", "tanh", "relu", "sigmoid", "identity"]
    x = torch.randn(5, 3, 4)
    g = torch.randn(5, 3, 4)
    layer = layers.Activation(names)
    y = layer.forward(x)
    grad = layer.backward(g)
    for m, name in enumerate(names):
        alone = nn.ACTIVATIONS[name]()
        torch.testing.assert_close(y[m], alone.forward(x[m]))
        torch.testing.assert_close(grad[m], alone.backward(g[m]))


def test_per_member_activations_backward_agrees_with_autograd():
    names = ["sigmoid", "relu", "tanh"]
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    g = torch.randn(3, 4, 6, dtype=torch.float64)
    layer = layers.Activation(names)
    layer.c0, layer.c1, layer.c2, layer.c3 = (c.double() for c in (
        layer.c0, layer.c1, layer.c2, layer.c3))
    layer.forward(x)
    ours = layer.backward(g)
    with torch.enable_grad():
        leaf = x.clone().requires_grad_(True)
        out = torch.stack([torch.sigmoid(leaf[0]), torch.relu(leaf[1]), torch.tanh(leaf[2])])
        (out * g).sum().backward()
    torch.testing.assert_close(ours, leaf.grad)


def test_wide_tanh_through_the_sigmoid_stays_within_float_error_of_tanh():
    x = torch.linspace(-8, 8, layers.TANH_BY_SIGMOID * 2).view(1, 2, -1)
    layer = layers.Activation(["tanh"])
    torch.testing.assert_close(layer.forward(x), torch.tanh(x), atol=3e-7, rtol=0)
    g = torch.randn_like(x)
    torch.testing.assert_close(layer.backward(g), g * (1 - torch.tanh(x) ** 2), atol=4e-6,
                               rtol=0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_the_batched_networks_gradients_are_the_plain_networks(activation):
    sizes = [2, 25, 25, 2]
    net = layers.Network(sizes, [activation] * 2, dtype=torch.float64)
    for i in range(2):
        for linear in net.linears:
            linear.init_member(i, torch.Generator().manual_seed(10 * i + linear.in_features),
                               "xavier", 1.0)
    x, t = torch.rand(2, 7, 2, dtype=torch.float64), torch.rand(2, 7, 2, dtype=torch.float64)
    loss = layers.Loss(["mean", "mean"])
    net.backward(loss.gradient(net.forward(x), t))
    for i in range(2):
        plain = net.member(i, activation)
        plain.zero_grad()
        single = nn.LossMSE()
        single.forward(plain.forward(x[i]), t[i])
        plain.backward(single.backward())
        for (_, ours), (_, theirs) in zip(net.param(), plain.param()):
            torch.testing.assert_close(ours[i].reshape(theirs.shape), theirs)


def _plain_loop(X, y, settings: dict, sizes, epochs: int, n_train: int) -> tuple[nn.Sequential, list]:
    """The oracle: a minibatch loop over minidl.nn and minidl.optim, as a learner writes it."""
    generator = torch.Generator().manual_seed(settings["seed"])
    model = nn.mlp(sizes, settings["activation"])
    model.init_params("xavier", 1.0, generator)
    loss = nn.LossMSE()
    opt = optim.make(settings["optimizer"], model.param(), lr=settings["lr"])
    T = data.one_hot(y)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, settings["batch_size"]):
            rows = order[start:start + settings["batch_size"]]
            opt.zero_grad()
            loss.forward(model.forward(X[rows]), T[rows])
            model.backward(loss.backward())
            opt.step()
        losses.append(float(((model.forward(X[:n_train]) - T[:n_train]) ** 2).mean()))
    return model, losses


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_a_member_trains_exactly_as_a_plain_minibatch_loop(optimizer):
    X, y = data.disk(90, seed=4)
    sizes = [2, 8, 8, 2]
    members, oracles = [], []
    for k, (activation, lr, batch) in enumerate([("tanh", 0.05, 7), ("relu", 0.01, 7)]):
        settings = {"activation": activation, "optimizer": optimizer, "lr": lr,
                    "batch_size": batch, "seed": 11 + k}
        members.append(Member(settings, torch.arange(60), torch.arange(60, 90), 11 + k))
        oracles.append(_plain_loop(X, y, settings, sizes, 3, 60))
    population = Population(X, y, members, sizes)
    history = []
    while population.epoch < 3:
        record = population.step()
        if record is not None:
            history.append(record["metrics"]["train_loss"])
    for k, (model, losses) in enumerate(oracles):
        assert [float(h[k]) for h in history] == pytest.approx(losses, rel=1e-4)
        ours = population.network.member(k, members[k].get("activation"))
        for (p, _), (q, _) in zip(ours.param(), model.param()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_the_population_is_the_only_code_that_walks_minibatches():
    """One training loop: rows are cut into minibatches (``split``, ``narrow`` or a slice by
    the batch size) in one module of minidl, and nothing else steps an optimizer."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    cut = re.compile(r"(split|narrow)\(.*batch_size|:.*\+ *(self\.)?batch_size\]")
    walkers = {p.relative_to(root).as_posix() for p in (root / "minidl").rglob("*.py")
               for line in p.read_text().splitlines() if cut.search(line)}
    steppers = {p.relative_to(root).as_posix() for p in (root / "minidl").rglob("*.py")
                if re.search(r"optimizer\.step\(\)|\bopt\.step\(\)", p.read_text())}
    assert walkers == steppers == {"minidl/engine/population.py"}
