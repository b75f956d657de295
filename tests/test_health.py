import math

import pytest
import torch

from minidl import Config, Run, health, nn


def model_of(weights: list[tuple[torch.Tensor, torch.Tensor]], activation: str) -> nn.Sequential:
    """An MLP with the given (weight, bias) per layer."""
    sizes = [weights[0][0].shape[1]] + [w.shape[0] for w, _ in weights]
    model = nn.mlp(sizes, activation)
    for (linear, _), (w, b) in zip(health.layers(model), weights):
        linear.weight.copy_(w)
        linear.bias.copy_(b)
    return model


def square_points(n: int = 400, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed))


def test_layers_pairs_each_linear_with_its_activation():
    model = nn.mlp([2, 5, 4, 2], "relu")
    found = health.layers(model)
    assert [(lin.in_features, lin.out_features) for lin, _ in found] == [(2, 5), (5, 4), (4, 2)]
    assert [type(act).__name__ if act else None for _, act in found] == ["ReLU", "ReLU", None]
    assert health.layer_names(3) == ["hidden 1", "hidden 2", "output"]


def test_layer_outputs_end_with_the_model_output():
    model = nn.mlp([2, 6, 3, 2], "tanh")
    model.init_params("xavier", generator=torch.Generator().manual_seed(1))
    x = square_points(50)
    outs = health.layer_outputs(model, x)
    assert [o.shape for o in outs] == [(50, 6), (50, 3), (50, 2)]
    assert torch.equal(outs[-1], model.forward(x))
    assert outs[0].abs().max() <= 1.0  # after tanh


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
def test_gradient_norms_match_autograd_on_the_whole_set(activation):
    gen = torch.Generator().manual_seed(3)
    model = nn.mlp([2, 7, 5, 2], activation)
    model.init_params("xavier", gain=1.5, generator=gen)
    x = square_points(64, seed=4)
    target = torch.nn.functional.one_hot((x[:, 0] > x[:, 1]).long(), 2).float()
    rows = health.statistics(model, nn.LossMSE(), x, target)

    act = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    with torch.enable_grad():
        params = [(lin.weight.clone().requires_grad_(), lin.bias.clone().requires_grad_())
                  for lin, _ in health.layers(model)]
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w.t() + b
            if i < len(params) - 1:
                h = act(h)
        torch.nn.functional.mse_loss(h, target).backward()
    for row, (w, b) in zip(rows, params):
        expected = torch.cat([w.grad.reshape(-1), b.grad.reshape(-1)]).norm()
        assert row["grad_norm"] == pytest.approx(float(expected), rel=1e-5)
        assert row["weight_norm"] == pytest.approx(
            float(torch.cat([w.reshape(-1), b.reshape(-1)]).norm()), rel=1e-6)
    # the statistics leave no gradient behind for the optimizer's next step
    assert all(float(g.abs().sum()) == 0.0 for _, g in model.param())


def test_dead_relu_share_counts_units_never_active():
    # on [0, 1]², a unit with weights (−1, −1) and bias −0.1 is negative everywhere
    w1 = torch.tensor([[-1.0, -1.0], [1.0, 0.0], [-1.0, -1.0], [0.0, 1.0], [-2.0, 0.0]])
    b1 = torch.tensor([-0.1, 0.0, -0.1, 0.1, -0.05])
    model = model_of([(w1, b1), (torch.ones(2, 5), torch.zeros(2))], "relu")
    rows = health.statistics(model, nn.LossMSE(), square_points(), torch.zeros(400, 2))
    assert rows[0]["dead_share"] == pytest.approx(3 / 5)
    assert math.isnan(rows[0]["saturated_share"]) and math.isnan(rows[1]["dead_share"])


def test_a_unit_active_on_one_point_is_not_dead():
    outputs = torch.zeros(100, 2)
    outputs[37, 1] = 0.001
    assert health.dead_share(outputs) == 0.5


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_saturated_share_counts_units_saturated_on_most_points(activation):
    # Saturated: |z| > atanh(0.97) ≈ 2.09 for tanh, |z| > logit(0.97) ≈ 3.48 for sigmoid.
    # x₁ uniform on [0, 1]; the pre-activations z and the share of points saturated:
    #   unit 0: z = +10, unit 1: z = −10            everywhere           → saturated
    #   unit 2: z = 0                               nowhere              → not
    #   unit 3: z = 20 (x₁ − 0.8)   tanh ~79 %, sigmoid ~65 % of points  → saturated
    #   unit 4: z = 20 (x₁ − 0.05)  tanh ~85 %, sigmoid ~78 %            → saturated
    #   unit 5: z = 3 x₁            tanh ~30 %, sigmoid 0 %              → not
    w1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [20.0, 0.0], [20.0, 0.0],
                       [3.0, 0.0]])
    b1 = torch.tensor([10.0, -10.0, 0.0, -16.0, -1.0, 0.0])
    model = model_of([(w1, b1), (torch.ones(2, 6), torch.zeros(2))], activation)
    rows = health.statistics(model, nn.LossMSE(), square_points(2000), torch.zeros(2000, 2))
    assert rows[0]["saturated_share"] == pytest.approx(4 / 6)
    assert math.isnan(rows[0]["dead_share"]) and math.isnan(rows[1]["saturated_share"])


def test_saturation_is_refused_for_relu():
    with pytest.raises(ValueError, match="Tanh and Sigmoid"):
        health.saturated_share(torch.zeros(3, 2), nn.ReLU())


def test_update_ratio_is_the_relative_change_since_the_snapshot():
    model = nn.mlp([2, 3, 2], "tanh")
    model.init_params("xavier", generator=torch.Generator().manual_seed(0))
    start = health.snapshot(model)
    first = health.layers(model)[0][0]
    first.weight.add_(0.01)
    rows = health.statistics(model, nn.LossMSE(), square_points(10), torch.zeros(10, 2), start)
    expected = math.sqrt(6 * 0.01**2) / float(start[0].norm())
    assert rows[0]["update_ratio"] == pytest.approx(expected, rel=1e-4)
    assert rows[1]["update_ratio"] == 0.0
    assert math.isnan(health.statistics(model, nn.LossMSE(), square_points(10),
                                        torch.zeros(10, 2))[0]["update_ratio"])


def test_run_records_health_per_layer_per_epoch():
    run = Run(Config(hidden=(6, 4), n_train=60, n_test=20, epochs=3, batch_size=10),
              health_share=math.inf)
    run.fit()
    assert [(r["epoch"], r["layer"]) for r in run.health] == [
        (e, name) for e in (1, 2, 3) for name in ("hidden 1", "hidden 2", "output")]
    assert all(r["update_ratio"] > 0 and r["grad_norm"] > 0 for r in run.health)


def test_recording_health_does_not_change_training():
    config = Config(hidden=(6, 4), n_train=60, n_test=20, epochs=3, batch_size=7,
                    optimizer="adam", lr=0.01)
    tracked, bare = Run(config, health_share=math.inf), Run(config, track_health=False)
    tracked.fit()
    bare.fit()
    assert bare.health == [] and len(tracked.health) == 9
    assert tracked.history == bare.history
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(tracked.model.param(),
                                                            bare.model.param()))


def test_health_records_skip_epochs_past_their_share_of_the_time():
    run = Run(Config(hidden=(4,), n_train=40, n_test=10, epochs=5, batch_size=40),
              health_share=0.0)
    run.fit()
    assert sorted({r["epoch"] for r in run.health}) == [1, 5]  # the first and the last


def test_sigmoid_plateau_shows_as_vanishing_gradients_in_the_first_layer():
    """The report's Sigmoid run (Xavier gain 1, SGD lr 0.01) against Tanh: the first layer's
    gradient is orders of magnitude smaller, and shrinks layer by layer towards the input;
    going forward, what the units tell apart shrinks layer by layer too."""
    def first_epochs(activation: str) -> list[dict]:
        run = Run(Config(activation=activation, epochs=2, n_train=300, n_test=50))
        run.fit()
        return [r for r in run.health if r["epoch"] == 2]

    sigmoid, tanh = first_epochs("sigmoid"), first_epochs("tanh")
    assert sigmoid[0]["grad_norm"] < tanh[0]["grad_norm"] / 10
    grads = [r["grad_norm"] for r in sigmoid]
    assert grads == sorted(grads)  # smaller the further from the output
    spreads = [r["spread"] for r in sigmoid[:-1]]
    assert spreads == sorted(spreads, reverse=True)
    assert sigmoid[-2]["spread"] < tanh[-2]["spread"] / 10


def test_spread_is_the_mean_over_units_of_their_spread_over_points():
    w1, b1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]), torch.tensor([0.0, 0.0, 5.0])
    model = model_of([(w1, b1), (torch.ones(2, 3), torch.zeros(2))], "identity")
    x = square_points(500)
    rows = health.statistics(model, nn.LossMSE(), x, torch.zeros(500, 2))
    expected = (x[:, 0].std() + (2 * x[:, 1]).std() + 0.0) / 3
    assert rows[0]["spread"] == pytest.approx(float(expected), rel=1e-5)
