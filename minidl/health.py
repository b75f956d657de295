"""Layer health: per-layer statistics of a network, recorded once per epoch.

A *layer* is one ``Linear`` and the activation after it (the last ``Linear`` has
none: it is the output layer).  For layer ``l`` with parameters
``θ_l = (W_l, b_l)`` the statistics are:

- ``grad_norm``: ``‖∂L/∂θ_l‖₂`` of the training loss over the *whole* training set
  (one extra forward and backward pass at the end of the epoch, with the run's
  loss; a minibatch's gradient would mostly measure its noise);
- ``weight_norm``: ``‖θ_l‖₂``;
- ``update_ratio``: ``‖θ_l(end) − θ_l(start)‖₂ / ‖θ_l(start)‖₂`` over the epoch — how
  far the epoch's steps moved the layer, relative to its size (≈1e-3 per step is
  the usual rule of thumb; 1e-6 means the layer is not learning);
- ``spread``: how much the layer's units tell the training points apart — the
  standard deviation of each unit's output over the training set, averaged over
  the units (near 0: the layer passes on almost nothing of the input);
- ``dead_share`` (ReLU layers): the share of units whose output is 0 on *every*
  training point — no gradient reaches their weights, so they stay dead;
- ``saturated_share`` (Tanh / Sigmoid layers): the share of units that are
  saturated on most training points, i.e. on more than ``SATURATED_POINTS`` of them,
  where saturated means ``|tanh| > TANH_SATURATED`` (derivative ``1 − y² < 0.06``) or a
  sigmoid output below ``1 − SIGMOID_SATURATED`` or above ``SIGMOID_SATURATED``
  (derivative ``y (1 − y) < 0.03``).

Shapes: ``x : (rows, inputs)``; ``layer_outputs`` returns one ``(rows, units)``
tensor per layer.  Plain models only (no population).
"""

from __future__ import annotations

import math

import torch

from . import nn

TANH_SATURATED = 0.97       # |y| above this: tanh's slope is under 6 % of its peak
SIGMOID_SATURATED = 0.97    # y above this or below 1 − this: slope under 12 % of its peak
SATURATED_POINTS = 0.5      # "most training points": more than half of them

STATISTICS = ("grad_norm", "weight_norm", "update_ratio", "spread", "dead_share",
              "saturated_share")


def layers(model: nn.Sequential) -> list[tuple[nn.Linear, nn.Module | None]]:
    """``(Linear, the activation after it or None)`` per layer, input to output."""
    found: list[tuple[nn.Linear, nn.Module | None]] = []
    for module in model.modules:
        if isinstance(module, nn.Linear):
            found.append((module, None))
        elif found and found[-1][1] is None:
            found[-1] = (found[-1][0], module)
        else:
            raise ValueError(f"layer health: expected Linear, activation, Linear, …; "
                             f"got {model!r}")
    return found


def layer_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output for ``x`` in one forward pass: after each hidden layer's
    activation, and the network's output last; ``(rows, units)`` each."""
    outputs = []
    for linear, activation in layers(model):
        x = linear.forward(x)
        if activation is not None:
            x = activation.forward(x)
        outputs.append(x)
    return outputs


def layer_names(count: int) -> list[str]:
    """``["hidden 1", …, "hidden n", "output"]`` for ``count`` layers."""
    return [f"hidden {i + 1}" for i in range(count - 1)] + ["output"]


def _flat(linear: nn.Linear) -> torch.Tensor:
    return torch.cat([linear.weight.reshape(-1), linear.bias.reshape(-1)])


def _flat_grad(linear: nn.Linear) -> torch.Tensor:
    return torch.cat([linear.grad_weight.reshape(-1), linear.grad_bias.reshape(-1)])


def dead_share(outputs: torch.Tensor) -> float:
    """Share of units (columns of ``outputs : (rows, units)``) that are 0 on every row."""
    return float((outputs <= 0).all(dim=0).float().mean())


def saturated_share(outputs: torch.Tensor, activation: nn.Module) -> float:
    """Share of units saturated on more than ``SATURATED_POINTS`` of the rows (tanh/sigmoid)."""
    if isinstance(activation, nn.Tanh):
        saturated = outputs.abs() > TANH_SATURATED
    elif isinstance(activation, nn.Sigmoid):
        saturated = (outputs > SIGMOID_SATURATED) | (outputs < 1.0 - SIGMOID_SATURATED)
    else:
        raise ValueError(f"saturation is defined for Tanh and Sigmoid, not {activation!r}")
    return float((saturated.float().mean(dim=0) > SATURATED_POINTS).float().mean())


def statistics(model: nn.Sequential, loss: nn.LossMSE, x: torch.Tensor, target: torch.Tensor,
               start: list[torch.Tensor] | None = None) -> list[dict]:
    """One dict per layer (``layer``, ``units`` and ``STATISTICS``) for the training set
    ``x`` / ``target``; ``start`` holds each layer's flat parameters at the epoch's start
    (``snapshot``), else ``update_ratio`` is NaN.  A statistic that does not apply to a
    layer (dead units of a Tanh layer, any share of the output layer) is NaN.

    Leaves the model's gradients at zero (it uses them for the full-set gradient).
    """
    found = layers(model)
    outputs = layer_outputs(model, x)
    model.zero_grad()
    loss.forward(outputs[-1], target)
    model.backward(loss.backward())
    rows = []
    for i, ((linear, activation), name, out) in enumerate(
            zip(found, layer_names(len(found)), outputs)):
        theta = _flat(linear)
        weight_norm = float(theta.norm())
        update = math.nan
        if start is not None:
            before = float(start[i].norm())
            update = float((theta - start[i]).norm()) / before if before > 0 else math.nan
        rows.append({
            "layer": name, "units": linear.out_features,
            "grad_norm": float(_flat_grad(linear).norm()),
            "weight_norm": weight_norm,
            "update_ratio": update,
            "spread": float(out.std(dim=0).mean()) if out.shape[0] > 1 else math.nan,
            "dead_share": dead_share(out) if isinstance(activation, nn.ReLU) else math.nan,
            "saturated_share": (saturated_share(out, activation)
                                if isinstance(activation, (nn.Tanh, nn.Sigmoid)) else math.nan),
        })
    model.zero_grad()
    return rows


def snapshot(model: nn.Sequential) -> list[torch.Tensor]:
    """Each layer's parameters, flattened and copied: the start of an epoch's update."""
    return [_flat(linear).clone() for linear, _ in layers(model)]
