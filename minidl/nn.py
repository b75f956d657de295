"""Modules with hand-written backward passes.

Every module maps an input ``x`` to an output ``y = f(x)`` in ``forward`` and,
given ``dL/dy`` in ``backward``, adds ``dL/dparam`` into its gradient tensors
and returns ``dL/dx`` (the chain rule, one layer at a time).  Each module keeps
in ``forward`` what its ``backward`` needs.

Shapes: ``x : (batch, in_features)``.  Activations are elementwise, so they take
any shape.  (Training many networks at once, each with its own weights, is the
engine's: ``minidl.engine.layers`` holds the batched versions of these modules.)
"""

from __future__ import annotations

import functools
import math

import torch

from . import hparams

# (parameter, its gradient): what ``param()`` lists and an optimizer receives
ParamGrad = tuple[torch.Tensor, torch.Tensor]


class Module:
    """Base class: ``forward``, ``backward``, ``param``, ``zero_grad``, ``init_params``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def param(self) -> list[ParamGrad]:
        """``(parameter, gradient)`` pairs; the same tensor objects on every call."""
        return []

    def zero_grad(self) -> None:
        for _, grad in self.param():
            grad.zero_()

    def init_params(self, method: str = "xavier", gain: float = 1.0,
                    generator: torch.Generator | None = None, **conventions: str) -> None:
        """Parameterless modules have nothing to initialise."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------- initialisation

INIT_METHODS = hparams.INIT_METHODS
MAX_WEIGHTS = 2**26  # 256 MB of float32 weights in one layer: refused before allocating


@functools.lru_cache(maxsize=256)  # a sweep initialises hundreds of networks alike
def _init_rule(method: str, gain: float, fans: int, init_scale: str, init_dist: str,
               init_bias: str) -> tuple[float, bool, bool] | None:
    """``(σ, uniform?, bias drawn?)``, each setting checked by the settings table; ``None``
    for ``"zero"``."""
    if hparams.check("init", method) == "zero":
        return None
    spread = 2.0 * hparams.check("gain", gain) / fans
    std = math.sqrt(spread) if hparams.check("init_scale", init_scale) == "variance" else spread
    return (std, hparams.check("init_dist", init_dist) == "uniform",
            hparams.check("init_bias", init_bias) == "drawn")


def init_weights(weight: torch.Tensor, bias: torch.Tensor, method: str = "xavier",
                 gain: float = 1.0, generator: torch.Generator | None = None,
                 init_scale: str = "variance", init_dist: str = "normal",
                 init_bias: str = "drawn") -> None:
    """Fill one layer's ``weight : (out, in)`` and ``bias`` in place.

    ``"xavier"``: weight, then bias ~ N(0, σ²) from ``generator``, σ² = 2·gain / (fan_in +
    fan_out) (the seed report's formula: the variance is not squared in the gain); ``"zero"``:
    0.  The report's open conventions (``minidl.hparams``): ``init_scale`` "std" reads
    2·gain / (fan_in + fan_out) as σ itself; ``init_dist`` "uniform" draws from U(−√3·σ, √3·σ),
    of the same variance; ``init_bias`` "zero" zeroes the biases.
    """
    rule = _init_rule(method, gain, weight.shape[-1] + weight.shape[-2], init_scale, init_dist,
                      init_bias)
    if rule is None:  # "zero"
        weight.zero_()
        bias.zero_()
        return
    std, uniform, drawn_bias = rule
    for t in [weight, bias] if drawn_bias else [weight]:
        if uniform:
            t.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator=generator)
        else:
            t.normal_(0.0, std, generator=generator)
    if not drawn_bias:
        bias.zero_()


def check_features(in_features: object, out_features: object, copies: int = 1) -> None:
    """``ValueError`` unless both are positive integers and the weights (of ``copies`` layers
    alike) are not absurdly many."""
    for name, value in (("in_features", in_features), ("out_features", out_features)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
    if in_features * out_features * copies > MAX_WEIGHTS:
        raise ValueError(f"Linear: {in_features} × {out_features}"
                         + (f" × {copies} networks" if copies > 1 else "")
                         + f" weights is over {MAX_WEIGHTS:,}: a typo, not a model")


# ---------------------------------------------------------------- modules

class Linear(Module):
    """Affine map ``y = x Wᵀ + b``.

    Backward, for ``g = dL/dy``: ``dL/dW = gᵀ x``, ``dL/db = Σ_batch g``,
    ``dL/dx = g W``.

    Shape:
        weight ``(out_features, in_features)``, bias ``(out_features,)``;
        x ``(batch, in_features)`` → y ``(batch, out_features)``.
    """

    def __init__(self, in_features: int, out_features: int, dtype: torch.dtype = torch.float32):
        check_features(in_features, out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = torch.zeros(out_features, in_features, dtype=dtype)
        self.bias = torch.zeros(out_features, dtype=dtype)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self._input: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != self.weight.dtype:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Linear: expected a {self.weight.dtype} tensor, got {got}")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear: expected input of shape (batch, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        self._input = x
        return torch.addmm(self.bias, x, self.weight.t())

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self._input
        if x is None:
            raise ValueError("Linear: backward before forward")
        if grad_output.shape != (x.shape[0], self.out_features):
            raise ValueError(f"Linear: expected a gradient of shape "
                             f"{(x.shape[0], self.out_features)}, got {tuple(grad_output.shape)}")
        self.grad_weight.addmm_(grad_output.t(), x)
        self.grad_bias.add_(grad_output.sum(0))
        return grad_output.mm(self.weight)

    def param(self) -> list[ParamGrad]:
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]

    def init_params(self, method: str = "xavier", gain: float = 1.0,
                    generator: torch.Generator | None = None, **conventions: str) -> None:
        """``init_weights`` of this layer's weight and bias."""
        init_weights(self.weight, self.bias, method, gain, generator, **conventions)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class Sequential(Module):
    """Composition ``y = f_n(… f_1(x))``; backward runs the children in reverse."""

    def __init__(self, *modules: Module):
        self.modules = list(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        for module in reversed(self.modules):
            grad_output = module.backward(grad_output)
        return grad_output

    def param(self) -> list[ParamGrad]:
        return [pg for module in self.modules for pg in module.param()]

    def init_params(self, method: str = "xavier", gain: float = 1.0,
                    generator: torch.Generator | None = None, **conventions: str) -> None:
        for module in self.modules:
            module.init_params(method, gain, generator, **conventions)

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(map(repr, self.modules)) + ")"


class ReLU(Module):
    """``y = max(x, 0)``; ``dL/dx = dL/dy · [x > 0]``.

    ``[x > 0]`` is ``sign(y)`` (y ≥ 0): a float multiply, faster than a bool mask.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.relu(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return torch.sign(self._output).mul_(grad_output)


class Tanh(Module):
    """``y = tanh x``; ``dL/dx = dL/dy · (1 − y²)``.  ``torch.tanh`` saturates, never overflows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.tanh(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._output
        return torch.addcmul(grad_output, grad_output, y * y, value=-1.0)


class Sigmoid(Module):
    """``y = 1 / (1 + e^(−x))``; ``dL/dx = dL/dy · y (1 − y)``.

    ``torch.sigmoid`` evaluates the stable form, so no input overflows ``exp``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.sigmoid(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._output
        return torch.addcmul(y, y, y, value=-1.0).mul_(grad_output)  # y − y², then · g


class Identity(Module):
    """The linear activation ``y = x``; ``dL/dx = dL/dy``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output


def mse_divisor(reduction: str, batch: int, outputs: int) -> int:
    """``D`` of ``LossMSE`` with ``reduction`` for a ``(batch, outputs)`` minibatch."""
    return {"mean": batch * outputs, "sum": 1, "batch_mean": batch}[reduction]


class LossMSE(Module):
    """Squared error ``L = Σ (pred − target)² / D``; ``dL/dpred = 2 (pred − target) / D``.

    ``reduction`` picks ``D`` for a ``(batch, outputs)`` minibatch: ``"mean"``
    (``D`` = batch × outputs, PyTorch's ``mse_loss`` default), ``"sum"``
    (``D`` = 1, its ``reduction="sum"``) or ``"batch_mean"`` (``D`` = batch: summed
    over outputs, averaged over the batch).
    """

    def __init__(self, reduction: str = "mean"):
        self.reduction = hparams.check("loss", reduction)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() != 2:
            raise ValueError(f"LossMSE: expected a prediction and a target of one shape "
                             f"(batch, outputs), got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        self._diff = pred - target
        return self._diff.square().sum() / mse_divisor(self.reduction, *pred.shape)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        """``dL/dpred``, times ``dL/dloss`` (``grad_output``, a scalar) if given."""
        diff = getattr(self, "_diff", None)
        if diff is None:
            raise ValueError("LossMSE: backward before forward")
        grad = diff * (2.0 / mse_divisor(self.reduction, *diff.shape))
        return grad if grad_output is None else grad * grad_output

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward(pred, target)


# one class per ``hparams.ACTIVATIONS`` name (a test keeps the two in step)
ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity,
}


def activation_name(activation: str) -> str:
    """An activation's name checked by the settings table (any case)."""
    return hparams.check("activation", activation.lower() if isinstance(activation, str)
                         else activation)


def check_sizes(sizes: list[int]) -> list[int]:
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {sizes!r}")
    return list(sizes)


def mlp(sizes: list[int], activation: str = "tanh", dtype: torch.dtype = torch.float32
        ) -> Sequential:
    """``Linear(sizes[0], sizes[1]), act, …, Linear(sizes[-2], sizes[-1])``; no activation at
    the end."""
    key = activation_name(activation)
    sizes = check_sizes(sizes)
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[key]())
    return Sequential(*layers)


def parameter_count(model: Module) -> int:
    return sum(p.numel() for p, _ in model.param())
