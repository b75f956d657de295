"""Every module's hand-written backward against autograd (the oracle)."""

import warnings

import pytest
import torch

from minidl import nn

ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity]
TORCH_ACT = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid,
             nn.Identity: lambda x: x}


def autograd(fn, *inputs):
    """Gradients of sum(fn(*inputs) * upstream) w.r.t. every input, via torch.autograd."""
    with torch.enable_grad():
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        upstream = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(1))
        grads = torch.autograd.grad((out * upstream).sum(), leaves)
    return out.detach(), upstream, grads


@pytest.mark.parametrize("batch,n_in,n_out", [(1, 2, 25), (7, 25, 25), (20, 25, 2), (3, 1, 1)])
def test_linear_matches_autograd(batch, n_in, n_out):
    layer = nn.Linear(n_in, n_out, dtype=torch.float64)
    layer.init_params("xavier", 1.0, torch.Generator().manual_seed(0))
    x = torch.randn(batch, n_in, dtype=torch.float64)
    ref, upstream, (gx, gw, gb) = autograd(
        lambda x, w, b: torch.nn.functional.linear(x, w, b), x, layer.weight, layer.bias)
    torch.testing.assert_close(layer.forward(x), ref)
    torch.testing.assert_close(layer.backward(upstream), gx)
    torch.testing.assert_close(layer.grad_weight, gw)
    torch.testing.assert_close(layer.grad_bias, gb)


def test_linear_gradients_accumulate_until_zero_grad():
    layer = nn.Linear(3, 4, dtype=torch.float64)
    layer.init_params("xavier", 1.0, torch.Generator().manual_seed(0))
    x, g = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    layer.forward(x)
    layer.backward(g)
    once = layer.grad_weight.clone()
    layer.forward(x)
    layer.backward(g)
    torch.testing.assert_close(layer.grad_weight, 2 * once)
    layer.zero_grad()
    assert layer.grad_weight.abs().sum() == 0 and layer.grad_bias.abs().sum() == 0


def test_param_pairs_are_the_same_tensors_every_call():
    layer = nn.Linear(2, 3)
    (w, gw), (b, gb) = layer.param()
    assert w.shape == (3, 2) and b.shape == (3,)
    assert all(a is c for a, c in zip([w, gw, b, gb], [t for p in layer.param() for t in p]))


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 5), (20, 25), (4, 3, 2)])
def test_activation_matches_autograd(act, shape):
    x = 3 * torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    module = act()
    ref, upstream, (gx,) = autograd(TORCH_ACT[act], x)
    torch.testing.assert_close(module.forward(x), ref)
    torch.testing.assert_close(module.backward(upstream), gx)


@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid])
def test_saturating_activations_are_finite_for_extreme_inputs(act):
    x = torch.tensor([[-1e30, -1e4, -100.0, 0.0, 100.0, 1e4, 1e30, torch.finfo(torch.float32).max]])
    module = act()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = module.forward(x)
        g = module.backward(torch.ones_like(x))
    assert torch.isfinite(y).all() and torch.isfinite(g).all()
    assert y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize("shape", [(1, 2), (20, 2), (5, 7)])
def test_mse_matches_torch(shape):
    pred, target = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    loss = nn.LossMSE()
    with torch.enable_grad():
        leaf = pred.clone().requires_grad_(True)
        ref = torch.nn.functional.mse_loss(leaf, target)
        (gpred,) = torch.autograd.grad(ref, [leaf])
    torch.testing.assert_close(loss.forward(pred, target), ref.detach())
    torch.testing.assert_close(loss.backward(), gpred)


def test_mse_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        nn.LossMSE().forward(torch.zeros(3, 2), torch.zeros(3, 1))


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("batch", [1, 10])
def test_sequential_network_matches_autograd(activation, batch):
    sizes = [2, 25, 25, 25, 2]
    model = nn.mlp(sizes, activation, dtype=torch.float64)
    model.init_params("xavier", 1.0, torch.Generator().manual_seed(3))
    x = torch.rand(batch, 2, dtype=torch.float64)
    target = torch.rand(batch, 2, dtype=torch.float64)
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "identity": lambda v: v}[activation]
    params = [p for p, _ in model.param()]

    def reference(x, *ps):
        h = x
        for i in range(0, len(ps), 2):
            h = torch.nn.functional.linear(h, ps[i], ps[i + 1])
            if i < len(ps) - 2:
                h = act(h)
        return torch.nn.functional.mse_loss(h, target)

    with torch.enable_grad():
        leaves = [t.clone().requires_grad_(True) for t in [x, *params]]
        ref = reference(*leaves)
        ref_grads = torch.autograd.grad(ref, leaves)
    loss = nn.LossMSE()
    value = loss.forward(model.forward(x), target)
    gx = model.backward(loss.backward())
    torch.testing.assert_close(value, ref.detach())
    torch.testing.assert_close(gx, ref_grads[0])
    for (_, grad), ref_grad in zip(model.param(), ref_grads[1:]):
        torch.testing.assert_close(grad, ref_grad)


def test_sequential_concatenates_children_params_in_order():
    model = nn.mlp([2, 4, 3], "relu")
    shapes = [tuple(p.shape) for p, _ in model.param()]
    assert shapes == [(4, 2), (4,), (3, 4), (3,)]
    assert nn.parameter_count(model) == 4 * 2 + 4 + 3 * 4 + 3


def test_xavier_statistics_follow_the_report_formula():
    layer = nn.Linear(300, 500)
    layer.init_params("xavier", gain=2.0, generator=torch.Generator().manual_seed(0))
    expected_var = 2 * 2.0 / (300 + 500)
    assert abs(layer.weight.mean().item()) < 0.002
    assert layer.weight.var().item() == pytest.approx(expected_var, rel=0.02)
    big = nn.Linear(5000, 500)  # biases too: 500 draws is too few, so use a wide layer
    big.init_params("xavier", 1.0, torch.Generator().manual_seed(1))
    assert big.bias.var().item() == pytest.approx(2 / 5500, rel=0.15)
    assert big.bias.abs().sum() > 0


def test_init_is_reproducible_and_zero_zeroes():
    a, b = nn.mlp([2, 25, 2]), nn.mlp([2, 25, 2])
    a.init_params("xavier", 1.0, torch.Generator().manual_seed(7))
    b.init_params("xavier", 1.0, torch.Generator().manual_seed(7))
    for (p, _), (q, _) in zip(a.param(), b.param()):
        assert torch.equal(p, q)
    a.init_params("zero")
    assert all(p.abs().sum() == 0 for p, _ in a.param())


@pytest.mark.parametrize("bad", [lambda: nn.Linear(2, 3).forward(torch.zeros(4, 5)),
                                 lambda: nn.Linear(2, 3).forward(torch.zeros(2)),
                                 lambda: nn.Linear(0, 3),
                                 lambda: nn.mlp([2, 3], "softmax"),
                                 lambda: nn.Linear(2, 3).init_params("he"),
                                 lambda: nn.Linear(2, 3).init_params("xavier", gain=-1.0)])
def test_bad_input_raises_value_error_with_context(bad):
    with pytest.raises(ValueError) as info:
        bad()
    message = str(info.value)
    assert any(word in message for word in ("expected", "must"))


def test_mse_backward_scales_by_the_upstream_gradient():
    pred, target = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    loss = nn.LossMSE()
    loss.forward(pred, target)
    torch.testing.assert_close(loss.backward(torch.tensor(3.0, dtype=torch.float64)),
                               3 * loss.backward())


# ---------------------------------------------------------------- the report's open conventions

REDUCTIONS = {
    "mean": lambda p, t: torch.nn.functional.mse_loss(p, t),
    "sum": lambda p, t: torch.nn.functional.mse_loss(p, t, reduction="sum"),
    "batch_mean": lambda p, t: torch.nn.functional.mse_loss(p, t, reduction="sum") / p.shape[0],
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 2), (20, 2), (5, 7)])
def test_mse_reductions_match_torch(reduction, shape):
    pred, target = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    loss = nn.LossMSE(reduction=reduction)
    with torch.enable_grad():
        leaf = pred.clone().requires_grad_(True)
        ref = REDUCTIONS[reduction](leaf, target)
        (gpred,) = torch.autograd.grad(ref, [leaf])
    torch.testing.assert_close(loss.forward(pred, target), ref.detach())
    torch.testing.assert_close(loss.backward(), gpred)


def test_an_unknown_mse_reduction_is_refused_by_the_settings_table():
    with pytest.raises(ValueError, match="MSE reduction"):
        nn.LossMSE(reduction="median")


@pytest.mark.parametrize("scale, dist, bias", [("variance", "uniform", "drawn"),
                                               ("std", "normal", "drawn"),
                                               ("variance", "normal", "zero")])
def test_xavier_conventions_draw_what_they_say(scale, dist, bias):
    layer = nn.Linear(300, 500)
    layer.init_params("xavier", 2.0, torch.Generator().manual_seed(0), init_scale=scale,
                      init_dist=dist, init_bias=bias)
    spread = 2 * 2.0 / (300 + 500)
    std = spread if scale == "std" else spread ** 0.5
    assert layer.weight.std().item() == pytest.approx(std, rel=0.02)
    if dist == "uniform":  # U(−√3σ, √3σ): bounded, with the same variance
        assert layer.weight.abs().max().item() <= 3 ** 0.5 * std
        assert layer.weight.abs().max().item() > 0.99 * 3 ** 0.5 * std
    assert (layer.bias.abs().sum().item() == 0) == (bias == "zero")


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Linear(True, 3), "in_features"),
    (lambda: nn.Linear(2, 10**9), "a typo, not a model"),
    (lambda: nn.Linear(2, 3).forward(torch.zeros(4, 2, dtype=torch.float64)), "float32"),
    (lambda: nn.Linear(2, 3).forward([[0.0, 1.0]]), "float32 tensor, got list"),
    (lambda: nn.Linear(2, 3).backward(torch.zeros(4, 3)), "backward before forward"),
    (lambda: nn.LossMSE().backward(), "backward before forward"),
])
def test_misuse_is_a_value_error_naming_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_gradient_of_the_wrong_shape_is_refused_before_it_touches_the_weights():
    layer = nn.Linear(2, 3)
    layer.forward(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"gradient of shape \(4, 3\), got \(4, 2\)"):
        layer.backward(torch.zeros(4, 2))
    assert layer.grad_weight.abs().sum() == 0
