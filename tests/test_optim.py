"""Optimizer trajectories against torch.optim (the oracle), in float64."""

import inspect

import pytest
import torch

from minidl import hparams, nn, optim
from minidl.engine import layers

STEPS = 300


def trajectories(make_ours, make_theirs, grad_scale=1.0, steps=STEPS, l1=None):
    """Run both optimizers on the same parameters with the same gradient sequence.

    With ``l1`` (ours made with it): theirs has no penalty but steps on autograd's gradient
    of ``loss + l1·Σ|θ|``, where the loss is ½·grad_scale·Σθ² + Σn·θ (fresh noise n each
    step), whose gradient is what ours is fed; one parameter starts at exactly 0, where
    sign(0) = 0 as autograd's gradient of |θ| there."""
    g = torch.Generator().manual_seed(0 if l1 is None else 1)
    shapes = [(4, 3), (4,), (2, 4), (2,)]
    init = [torch.randn(s, dtype=torch.float64, generator=g) for s in shapes]
    if l1 is not None:
        init[1][0] = 0.0
    ours = [(p.clone(), torch.zeros_like(p)) for p in init]
    theirs = [p.clone() for p in init]
    opt_ours = make_ours(ours)
    with torch.enable_grad():
        leaves = [p.requires_grad_(True) for p in theirs]
        opt_theirs = make_theirs(leaves)
        for _ in range(steps):
            # gradients depend on the parameters (a quadratic bowl plus noise), as in training
            noise = [grad_scale * torch.randn(s, dtype=torch.float64, generator=g) for s in shapes]
            opt_ours.zero_grad()
            for (p, grad), n in zip(ours, noise):
                grad.add_(grad_scale * p + n)
            opt_theirs.zero_grad()
            if l1 is None:
                for p, n in zip(leaves, noise):
                    p.grad = (grad_scale * p.detach() + n).clone()
            else:
                loss = sum((0.5 * grad_scale * p.square() + n * p).sum()
                           for p, n in zip(leaves, noise))
                (loss + l1 * sum(p.abs().sum() for p in leaves)).backward()
            opt_ours.step()
            opt_theirs.step()
    return [p for p, _ in ours], [p.detach() for p in leaves]


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.01), lambda ps: torch.optim.SGD(ps, lr=0.01)),
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9),
                     lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9)),
    "adam": (lambda ps: optim.Adam(ps, lr=1e-3, betas=(0.8, 0.99), eps=1e-8),
             lambda ps: torch.optim.Adam(ps, lr=1e-3, betas=(0.8, 0.99), eps=1e-8)),
    "adam_default": (lambda ps: optim.Adam(ps), lambda ps: torch.optim.Adam(ps)),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=1e-3, rho=0.9, eps=1e-9),
                lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.9, eps=1e-9)),
    "rmsprop_default": (lambda ps: optim.RMSprop(ps), lambda ps: torch.optim.RMSprop(ps)),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("grad_scale", [1.0, 1e-6])
def test_optimizer_matches_torch_optim(case, grad_scale):
    ours, theirs = trajectories(*CASES[case], grad_scale=grad_scale)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_eps_placement_matters_for_tiny_gradients():
    """With 1e-6 gradients, eps inside the square root would give a visibly different path."""
    ours, theirs = trajectories(lambda ps: optim.Adam(ps, lr=1e-3, eps=1e-6),
                                lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-6),
                                grad_scale=1e-6, steps=20)
    start, _ = trajectories(lambda ps: optim.SGD(ps, lr=1e-30), lambda ps: torch.optim.SGD(
        ps, lr=1e-30), steps=0)
    moved = sum((a - s).abs().sum() for a, s in zip(ours, start))
    assert moved > 1e-4  # it did move, and (above) exactly like torch
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_hyperparameters_change_mid_run_like_torch():
    def ours(ps):
        opt = optim.Adam(ps, lr=1e-3)
        real_step = opt.step

        def step():
            if opt.step_count == 100:
                opt.set_hyperparameters(lr=1e-2)
            real_step()
        opt.step = step
        return opt

    def theirs(ps):
        opt = torch.optim.Adam(ps, lr=1e-3)
        real_step = opt.step
        count = [0]

        def step():
            count[0] += 1
            if count[0] == 101:
                opt.param_groups[0]["lr"] = 1e-2
            real_step()
        opt.step = step
        return opt
    a_list, b_list = trajectories(ours, theirs, steps=200)
    for a, b in zip(a_list, b_list):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_parameters_keep_identity_after_flattening():
    model = nn.mlp([2, 5, 2])
    before = [(id(p), id(g)) for p, g in model.param()]
    opt = optim.SGD(model.param(), lr=0.1)
    assert [(id(p), id(g)) for p, g in model.param()] == before
    assert opt.flat_param.numel() == nn.parameter_count(model)
    model.param()[0][0].fill_(3.0)  # writes through to the flat buffer
    assert opt.flat_param[: 10].eq(3.0).all()


def test_second_optimizer_on_same_model_shares_the_buffer():
    model = nn.mlp([2, 5, 2])
    first = optim.SGD(model.param(), lr=0.1)
    second = optim.Adam(model.param())
    assert first.flat_param.data_ptr() == second.flat_param.data_ptr()


def test_per_member_learning_rates_update_each_member_independently():
    pop = layers.Linear(3, 3, 2, dtype=torch.float64)
    singles = [nn.Linear(3, 2, dtype=torch.float64) for _ in range(3)]
    lrs = [0.1, 0.01, 0.0001]
    opt_pop = optim.Adam(pop.param(), lr=lrs, betas=([0.9, 0.8, 0.9], 0.999))
    opts = [optim.Adam(s.param(), lr=lr, betas=(b1, 0.999)) for s, lr, b1 in
            zip(singles, lrs, [0.9, 0.8, 0.9])]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        x = torch.randn(3, 4, 3, dtype=torch.float64, generator=g)
        up = torch.randn(3, 4, 2, dtype=torch.float64, generator=g)
        opt_pop.zero_grad()
        pop.forward(x)
        pop.backward(up)
        opt_pop.step()
        for i, (s, o) in enumerate(zip(singles, opts)):
            o.zero_grad()
            s.forward(x[i])
            s.backward(up[i])
            o.step()
    for i, s in enumerate(singles):
        torch.testing.assert_close(pop.weight[i], s.weight)
        torch.testing.assert_close(pop.bias[i, 0], s.bias)


def test_freeze_members_zeroes_and_stops_them():
    pop = layers.Linear(3, 2, 2)
    for i in range(3):
        pop.init_member(i, torch.Generator().manual_seed(i), "xavier", 1.0)
    opt = optim.SGD(pop.param(), lr=0.1, momentum=0.9)
    pop.weight[1].fill_(float("nan"))
    opt.freeze_members(torch.tensor([False, True, False]))
    assert pop.weight[1].eq(0).all()
    before = pop.weight.clone()
    pop.forward(torch.ones(3, 4, 2))
    pop.backward(torch.ones(3, 4, 2))
    opt.step()
    assert pop.weight[1].eq(0).all()
    assert not torch.equal(pop.weight[0], before[0])


@pytest.mark.parametrize("make,match", [
    (lambda ps: optim.SGD(ps, lr=0.0), "learning rate"),
    (lambda ps: optim.SGD(ps, lr=-1), "learning rate"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=1.0), "momentum"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), "beta1"),
    (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), "beta2"),
    (lambda ps: optim.Adam(ps, eps=0.0), "eps"),
    (lambda ps: optim.RMSprop(ps, rho=1.5), "rho"),
    (lambda ps: optim.RMSprop(ps, lr=float("nan")), "learning rate"),
    (lambda ps: optim.make("adagrad", ps, lr=0.1), "adagrad"),
])
def test_bad_hyperparameters_raise_value_error_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make(nn.Linear(2, 2).param())


def test_params_must_be_pairs():
    with pytest.raises(TypeError, match="pairs"):
        optim.SGD([torch.zeros(2)], lr=0.1)


# ---------------------------------------------------------------- weight decay

DECAY_CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.01, weight_decay=0.05),
            lambda ps: torch.optim.SGD(ps, lr=0.01, weight_decay=0.05)),
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1),
                     lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1)),
    "adam": (lambda ps: optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.3),
             lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.3)),
    "rmsprop": (lambda ps: optim.RMSprop(ps, lr=1e-3, rho=0.9, weight_decay=0.02),
                lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.9, weight_decay=0.02)),
    "by_name": (lambda ps: optim.make("adam", ps, lr=1e-3, weight_decay=1e-2, momentum=0.5),
                lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=1e-2)),
}


@pytest.mark.parametrize("case", DECAY_CASES)
@pytest.mark.parametrize("grad_scale", [1.0, 1e-6])
def test_weight_decay_matches_torch_optim_over_100_float64_steps(case, grad_scale):
    ours, theirs = trajectories(*DECAY_CASES[case], grad_scale=grad_scale, steps=100)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_weight_decay_leaves_the_accumulated_gradient_alone():
    """The decayed gradient is the optimizer's own scratch: a second step without
    zero_grad sees the same accumulated gradient, as with torch.optim."""
    w, g = torch.ones(3, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64)
    opt = optim.SGD([(w, g)], lr=0.1, weight_decay=0.5)
    opt.step()
    assert torch.equal(g, torch.full((3,), 0.5, dtype=torch.float64))
    torch.testing.assert_close(w, torch.full((3,), 1 - 0.1 * (0.5 + 0.5), dtype=torch.float64))


def test_weight_decay_per_member_decays_each_member_by_its_own_rate():
    model = layers.Network([2, 3, 2], ["tanh"] * 2)
    for i in range(2):
        for linear in model.linears:
            linear.init_member(i, torch.Generator().manual_seed(i), "xavier", 1.0)
    before = [p.clone() for p, _ in model.param()]
    opt = optim.SGD(model.param(), lr=0.1, weight_decay=[0.0, 0.5])
    opt.step()  # zero gradients: only the decay moves the weights
    for (p, _), p0 in zip(model.param(), before):
        torch.testing.assert_close(p[0], p0[0])
        torch.testing.assert_close(p[1], p0[1] * (1 - 0.1 * 0.5))


# ---------------------------------------------------------------- validation on every path

@pytest.mark.parametrize("name,value", [
    ("lr", float("nan")), ("lr", -1.0), ("lr", 0.0), ("lr", "0.1"), ("lr", float("inf")),
    ("weight_decay", -0.1), ("weight_decay", [0.0, -1.0])])
def test_set_hyperparameters_checks_like_the_constructor_and_changes_nothing(name, value):
    w, g = torch.ones(2, 3), torch.zeros(2, 3)
    opt = optim.SGD([(w, g)], lr=0.1, momentum=0.5)
    before = dict(opt.hyper)
    with pytest.raises(ValueError, match="Invalid"):
        opt.set_hyperparameters(momentum=0.9, **{name: value})
    assert opt.hyper == before and opt.momentum == 0.5


def test_set_hyperparameters_refuses_another_optimizers_key():
    opt = optim.Adam([(torch.ones(3), torch.zeros(3))])
    with pytest.raises(ValueError, match="no hyperparameter 'momentum'"):
        opt.set_hyperparameters(momentum=0.9)


def test_each_optimizer_reads_the_keys_the_settings_table_gives_it():
    from minidl import hparams

    assert set(optim.OPTIMIZERS) == set(hparams.OPTIMIZERS)
    for name in hparams.OPTIMIZERS:
        opt = optim.make(name, [(torch.ones(3), torch.zeros(3))])
        assert tuple(opt.hyper) == hparams.optimizer_keys(name)
        assert "weight_decay" in opt.hyper and opt.hyper["weight_decay"] == 0.0


# ---------------------------------------------------------------- L1 penalty

L1_CASES = {
    "sgd": (lambda ps, l1: optim.SGD(ps, lr=0.01, l1=l1),
            lambda ps: torch.optim.SGD(ps, lr=0.01)),
    "sgd_momentum_l2": (lambda ps, l1: optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1,
                                                 l1=l1),
                        lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9, weight_decay=0.1)),
    "adam": (lambda ps, l1: optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), l1=l1),
             lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99))),
    "rmsprop": (lambda ps, l1: optim.RMSprop(ps, lr=1e-3, rho=0.9, l1=l1),
                lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.9)),
    "by_name": (lambda ps, l1: optim.make("rmsprop", ps, lr=1e-3, l1=l1, weight_decay=0.01),
                lambda ps: torch.optim.RMSprop(ps, lr=1e-3, weight_decay=0.01)),
}


@pytest.mark.parametrize("case", L1_CASES)
@pytest.mark.parametrize("l1", [0.05, 1e-3])
def test_l1_matches_autograd_of_the_penalised_loss_over_200_float64_steps(case, l1):
    ours_of, theirs = L1_CASES[case]
    ours, reference = trajectories(lambda ps: ours_of(ps, l1), theirs, steps=200, l1=l1)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)
    # and the penalty did something: without it the trajectory differs
    plain, _ = trajectories(lambda ps: ours_of(ps, 0.0), theirs, steps=200, l1=l1)
    assert not torch.allclose(plain[0], ours[0], rtol=1e-6, atol=0)


def test_l1_subgradient_is_zero_at_zero_and_leaves_the_gradient_alone():
    w = torch.tensor([0.0, 2.0, -3.0], dtype=torch.float64)
    g = torch.full((3,), 0.5, dtype=torch.float64)
    opt = optim.SGD([(w, g)], lr=0.1, l1=1.0)
    opt.step()
    torch.testing.assert_close(w, torch.tensor([-0.05, 2.0 - 0.15, -3.0 + 0.05],
                                               dtype=torch.float64))
    assert torch.equal(g, torch.full((3,), 0.5, dtype=torch.float64))
    zero = torch.zeros(2)
    optim.Adam([(zero, torch.zeros(2))], l1=0.5).step()  # no gradient, at 0: stays at 0
    assert torch.equal(zero, torch.zeros(2))


def test_l1_per_member_pulls_each_member_by_its_own_rate():
    model = layers.Network([2, 3, 2], ["tanh"] * 2)
    for i in range(2):
        for linear in model.linears:
            linear.init_member(i, torch.Generator().manual_seed(i), "xavier", 1.0)
    before = [p.clone() for p, _ in model.param()]
    opt = optim.SGD(model.param(), lr=0.1, l1=[0.0, 0.5])
    opt.step()  # zero gradients: only the penalty moves the weights
    for (p, _), p0 in zip(model.param(), before):
        torch.testing.assert_close(p[0], p0[0])
        torch.testing.assert_close(p[1], p0[1] - 0.1 * 0.5 * p0[1].sign())


def test_l1_is_checked_like_every_hyperparameter():
    with pytest.raises(ValueError, match=r"Invalid L1 penalty \(l1\): -0.1"):
        optim.SGD([(torch.ones(3), torch.zeros(3))], lr=0.1, l1=-0.1)


@pytest.mark.parametrize("name", hparams.OPTIMIZERS)
def test_an_optimizers_defaults_are_the_settings_tables_and_make_agrees(name):
    """One default per value: the constructor's, ``make``'s and the table's are one."""
    cls = optim.OPTIMIZERS[name]
    signature = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                 if k != "params"}
    if "betas" in signature:
        signature["beta1"], signature["beta2"] = signature.pop("betas")
    assert signature == hparams.optimizer_defaults(name)
    built, made = cls(nn.mlp([2, 3, 2]).param()), optim.make(name, nn.mlp([2, 3, 2]).param())
    assert built.hyper == made.hyper == hparams.optimizer_defaults(name)
    assert optim.Adam(nn.mlp([2, 3, 2]).param()).hyper["lr"] == 1e-3  # PyTorch's, as the table
