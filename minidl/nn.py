"""Modules with hand-written backward passes.

Every module maps an input ``x`` to an output ``y = f(x)`` in ``forward`` and,
given ``dL/dy`` in ``backward``, accumulates ``dL/dparam`` into its gradient
tensors and returns ``dL/dx`` (the chain rule, one layer at a time).

Shapes: a plain model takes ``x : (batch, in_features)``.  A *population* of
``members`` independent models (``Linear(..., members=M)``) takes
``x : (M, batch, in_features)``: every member has its own weights and its own
rows, and one batched matmul serves them all.  Activations are elementwise and
serve both cases unchanged.

Why this module is long: every module keeps its backward right beside its forward
(the point of the framework), and ``Linear`` and ``LossMSE`` also carry the
report's open conventions (Xavier readings, MSE reductions) and the checks that
turn misuse into a clear error.
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


INIT_METHODS = hparams.INIT_METHODS
MAX_WEIGHTS = 2**26  # 256 MB of float32 weights in one layer: refused before allocating


@functools.lru_cache(maxsize=256)  # a population initialises hundreds of members alike
def _init_rule(method: str, gain: float, fans: int, init_scale: str, init_dist: str,
               init_bias: str) -> tuple[float, bool, bool] | None:
    """``(σ, uniform?, bias drawn?)`` for ``Linear.init_params``, each setting checked by
    the settings table; ``None`` for ``"zero"``."""
    if hparams.check("init", method) == "zero":
        return None
    spread = 2.0 * hparams.check("gain", gain) / fans
    std = math.sqrt(spread) if hparams.check("init_scale", init_scale) == "variance" else spread
    return (std, hparams.check("init_dist", init_dist) == "uniform",
            hparams.check("init_bias", init_bias) == "drawn")


class Linear(Module):
    """Affine map ``y = x Wᵀ + b``.

    Backward, for ``g = dL/dy``: ``dL/dW = gᵀ x``, ``dL/db = Σ_batch g``,
    ``dL/dx = g W``.

    Shape:
        weight ``(out_features, in_features)``, bias ``(out_features,)``;
        with ``members=M``: weight ``(M, out, in)``, bias ``(M, 1, out)``.
        x ``(batch, in)`` → y ``(batch, out)``; with members
        ``(M, batch, in)`` → ``(M, batch, out)``.
    """

    def __init__(self, in_features: int, out_features: int, members: int | None = None,
                 dtype: torch.dtype = torch.float32):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive integer, got {value!r}")
        if members is not None and (not isinstance(members, int) or isinstance(members, bool)
                                    or members < 1):
            raise ValueError(f"Linear: members must be a positive integer or None, got {members!r}")
        if in_features * out_features * (members or 1) > MAX_WEIGHTS:
            raise ValueError(f"Linear: {in_features} × {out_features}"
                             + (f" × {members} members" if members else "")
                             + f" weights is over {MAX_WEIGHTS:,}: a typo, not a model")
        self.in_features, self.out_features, self.members = in_features, out_features, members
        lead = () if members is None else (members,)
        bias_shape = (out_features,) if members is None else (members, 1, out_features)
        self.weight = torch.zeros(*lead, out_features, in_features, dtype=dtype)
        self.bias = torch.zeros(bias_shape, dtype=dtype)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self._input: torch.Tensor | None = None
        self._scratch: torch.Tensor | None = None  # dL/dW before it goes into grad_weight
        self._dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dtype != self._dtype:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Linear: expected a {self._dtype} tensor, got {got}")
        expected_dim = 2 if self.members is None else 3
        if x.dim() != expected_dim or x.shape[-1] != self.in_features or (
                self.members is not None and x.shape[0] != self.members):
            want = (f"(batch, {self.in_features})" if self.members is None
                    else f"({self.members}, batch, {self.in_features})")
            raise ValueError(f"Linear: expected input of shape {want}, got {tuple(x.shape)}")
        self._input = x
        if self.members is None:
            y = torch.addmm(self.bias, x, self.weight.t())
        else:
            y = torch.baddbmm(self.bias, x, self.weight.transpose(1, 2))
        self._output_shape = y.shape  # what backward's gradient must be
        return y

    def backward(self, grad_output: torch.Tensor, accumulate: bool = True,
                 input_grad: bool = True) -> torch.Tensor | None:
        """``accumulate=False`` overwrites the gradients instead of adding to them (what a
        training step wants after ``zero_grad``, one op less per tensor); ``input_grad=False``
        skips ``dL/dx`` (returns ``None``): a first layer's input is data."""
        x = self._input
        if x is None:
            raise ValueError("Linear: backward before forward")
        if grad_output.shape != self._output_shape:
            raise ValueError(f"Linear: expected a gradient of shape "
                             f"{tuple(self._output_shape)}, got {tuple(grad_output.shape)}")
        g = grad_output
        if self.members is None:
            if accumulate:
                self.grad_weight.addmm_(g.t(), x)
                self.grad_bias.add_(g.sum(0))
            else:
                torch.mm(g.t(), x, out=self.grad_weight)
                torch.sum(g, 0, out=self.grad_bias)
            return g.mm(self.weight) if input_grad else None
        g_t = g.transpose(1, 2)
        if x.shape[1] == 1:  # one row per member: an outer product, cheaper by broadcasting
            if accumulate:
                self.grad_weight.addcmul_(g_t, x)
            else:
                torch.mul(g_t, x, out=self.grad_weight)
        elif self.grad_weight.is_contiguous():
            if accumulate:
                self.grad_weight.baddbmm_(g_t, x)
            else:
                torch.bmm(g_t, x, out=self.grad_weight)
        else:  # a view into an optimizer's member-major buffer: bmm into it is ~3× slower
            if self._scratch is None:
                with torch.inference_mode(False):  # an ordinary tensor, whatever the mode
                    self._scratch = torch.empty(self.weight.shape, dtype=self._dtype)
            product = torch.bmm(g_t, x, out=self._scratch)
            if accumulate:
                self.grad_weight.add_(product)
            else:
                self.grad_weight.copy_(product)
        if accumulate:
            self.grad_bias.add_(g.sum(1, keepdim=True))
        else:
            torch.sum(g, 1, keepdim=True, out=self.grad_bias)
        return g.bmm(self.weight) if input_grad else None

    def param(self) -> list[ParamGrad]:
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]

    def init_params(self, method: str = "xavier", gain: float = 1.0,
                    generator: torch.Generator | None = None, init_scale: str = "variance",
                    init_dist: str = "normal", init_bias: str = "drawn",
                    member: int | None = None) -> None:
        """``"xavier"``: weight and bias ~ N(0, σ²) with σ² = 2·gain / (fan_in + fan_out);
        ``"zero"``: 0.  ``member=i`` initialises only member ``i`` of a population, drawing
        exactly what a lone ``Linear`` would from the same generator.

        The conventions the seed report leaves open (``minidl.hparams``): ``init_scale``
        "std" reads 2·gain / (fan_in + fan_out) as σ itself; ``init_dist`` "uniform" draws
        from U(−√3·σ, √3·σ), of the same variance; ``init_bias`` "zero" zeroes the biases.
        """
        weight, bias = (self.weight, self.bias) if member is None else (
            self.weight[member], self.bias[member])
        rule = _init_rule(method, gain, self.in_features + self.out_features, init_scale,
                          init_dist, init_bias)
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

    def __repr__(self) -> str:
        members = "" if self.members is None else f", members={self.members}"
        return f"Linear({self.in_features}, {self.out_features}{members})"


class Sequential(Module):
    """Composition ``y = f_n(… f_1(x))``; backward runs the children in reverse."""

    def __init__(self, *modules: Module):
        self.modules = list(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, grad_output: torch.Tensor, accumulate: bool = True,
                 input_grad: bool = True) -> torch.Tensor | None:
        """``accumulate`` and ``input_grad`` as in ``Linear.backward``: a training step
        overwrites the gradients and needs no gradient for the data."""
        last = len(self.modules) - 1
        for i, module in enumerate(reversed(self.modules)):
            if isinstance(module, Linear):
                grad_output = module.backward(grad_output, accumulate, input_grad or i < last)
            else:
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

    ``[x > 0]`` is ``sign(y)`` (y ≥ 0): a float multiply, several times faster here than a
    bool mask (``masked_fill`` / ``where`` over a comparison) on a population's activations.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.relu(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return torch.sign(self._output).mul_(grad_output)


# Elements from which ``Tanh`` computes 2σ(2x) − 1 (within 2e-7 of tanh): on this machine's
# CPUs torch's tanh takes ~3 ns an element, sigmoid ~1 ns, so a population's wide
# activations are faster that way, while a small tensor pays four calls' overhead.
_TANH_BY_SIGMOID = 6144


class Tanh(Module):
    """``y = tanh x``; ``dL/dx = dL/dy · (1 − y²)``.  ``torch.tanh`` saturates, never overflows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() < _TANH_BY_SIGMOID:
            self._output = torch.tanh(x)
        else:  # tanh x = 2σ(2x) − 1: four cheap passes beat torch's slow tanh kernel here
            self._output = torch.mul(x, 2.0).sigmoid_().mul_(2.0).sub_(1.0)
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


class PerMember(Module):
    """A population's activation when its members differ in it: ``names[m]`` is member
    ``m``'s activation.

    Forward: each activation present is applied to the whole ``(M, batch, features)``
    tensor and ``torch.where`` keeps, for each member, its own one — on tensors this small
    every op costs its dispatch, not its elements, so two whole-tensor ops and a ``where``
    are cheaper than slicing members apart and joining them again.  Backward: each
    activation's derivative written in its output ``y`` is one polynomial
    ``d = c₀ + c₁·y + c₂·y² + c₃·sign(y)`` with per-member coefficients — Tanh
    ``1 − y²``, Sigmoid ``y − y²``, ReLU ``sign(y)`` (``[x > 0]``), Identity ``1`` —
    and ``dL/dx = d · dL/dy``.
    """

    # (c₀, c₁, c₂, c₃) of each activation's derivative in its output
    DERIVATIVES = {"tanh": (1.0, 0.0, -1.0, 0.0), "sigmoid": (0.0, 1.0, -1.0, 0.0),
                   "relu": (0.0, 0.0, 0.0, 1.0), "identity": (1.0, 0.0, 0.0, 0.0)}

    def __init__(self, names: list[str]):
        names = [hparams.check("activation", n) for n in names]
        if not names:
            raise ValueError("PerMember: no activations given")
        self.names = names
        self.layers = {k: ACTIVATIONS[k]() for k in dict.fromkeys(names)}
        shape = (len(names), 1, 1)
        self.masks = {k: torch.tensor([n == k for n in names]).view(shape) for k in self.layers}
        c = torch.tensor([self.DERIVATIVES[n] for n in names])
        self.c0, self.c1, self.c2, self.c3 = (c[:, i].view(shape) for i in range(4))
        self.has_relu = "relu" in self.layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kinds = list(self.layers)
        y = self.layers[kinds[0]].forward(x)
        for k in kinds[1:]:
            y = torch.where(self.masks[k], self.layers[k].forward(x), y)
        self._output = y
        return y

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        if len(self.layers) == 1:
            return next(iter(self.layers.values())).backward(grad_output)
        y = self._output
        d = torch.addcmul(self.c0, torch.addcmul(self.c1, self.c2, y), y)
        if self.has_relu:
            d.addcmul_(self.c3, torch.sign(y))
        return d.mul_(grad_output)

    def __repr__(self) -> str:
        return f"PerMember({', '.join(self.names)})"


class LossMSE(Module):
    """Squared error ``L = Σ (pred − target)² / D``; ``dL/dpred = 2 (pred − target) / D``.

    ``reduction`` picks ``D`` for a ``(batch, outputs)`` minibatch: ``"mean"``
    (``D`` = batch × outputs, PyTorch's ``mse_loss`` default), ``"sum"``
    (``D`` = 1, its ``reduction="sum"``) or ``"batch_mean"`` (``D`` = batch: summed
    over outputs, averaged over the batch).  With ``members=True`` the inputs are
    ``(M, batch, outputs)`` and each member gets its own loss: ``forward`` returns
    a ``(M,)`` tensor and ``backward`` the gradient of their sum, so every member
    sees exactly its own loss gradient; ``reduction`` may then be a list with one
    value per member.
    """

    def __init__(self, members: bool = False, reduction: str | list[str] = "mean"):
        self.members = members
        reductions = [reduction] if isinstance(reduction, str) else list(reduction)
        for r in reductions:
            hparams.check("loss", r)
        if len(set(reductions)) > 1 and not members:
            raise ValueError("LossMSE: one reduction per member needs members=True")
        self.reduction = reductions[0] if len(set(reductions)) == 1 else reductions
        self._divisors: dict[tuple[int, int], torch.Tensor] = {}  # per batch shape, per member

    def _divisor(self, batch: int, outputs: int) -> float | torch.Tensor:
        """``D`` for a ``(batch, outputs)`` minibatch: a float, or ``(M, 1, 1)`` per member."""
        if isinstance(self.reduction, str):  # the common case, on every step: no allocation
            r = self.reduction
            return float(batch * outputs if r == "mean" else batch if r == "batch_mean" else 1)
        key = (batch, outputs)
        if key not in self._divisors:  # one tensor per batch size (the last batch is smaller)
            by = {"mean": batch * outputs, "sum": 1, "batch_mean": batch}
            self._divisors[key] = torch.tensor([float(by[r]) for r in self.reduction]).view(
                -1, 1, 1)
        return self._divisors[key]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"LossMSE: prediction shape {tuple(pred.shape)} "
                             f"!= target shape {tuple(target.shape)}")
        self._diff = pred - target
        squared = self._diff.square()
        if self.reduction == "mean":  # PyTorch's default, the usual case: one fused mean
            return squared.mean(dim=(1, 2)) if self.members else squared.mean()
        scale = self._divisor(*pred.shape[-2:])
        if not self.members:
            return squared.sum() / scale
        return squared.sum(dim=(1, 2)) / (scale.view(-1) if isinstance(scale, torch.Tensor)
                                          else scale)

    def gradient(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``dL/dpred`` without ``L``: what ``backward`` would return after ``forward``, in
        two passes instead of five — a training step never looks at the loss value."""
        if pred.shape != target.shape:
            raise ValueError(f"LossMSE: prediction shape {tuple(pred.shape)} "
                             f"!= target shape {tuple(target.shape)}")
        diff = torch.sub(pred, target)
        if self.reduction == "mean":
            return diff.mul_(2.0 / (diff[0].numel() if self.members else diff.numel()))
        scale = self._divisor(*diff.shape[-2:])
        return diff.mul_(2.0).div_(scale) if isinstance(scale, torch.Tensor) \
            else diff.mul_(2.0 / scale)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        diff = getattr(self, "_diff", None)
        if diff is None:
            raise ValueError("LossMSE: backward before forward")
        if self.reduction == "mean":  # the usual case first: no shape arithmetic
            grad = diff * (2.0 / (diff[0].numel() if self.members else diff.numel()))
        else:
            scale = self._divisor(*diff.shape[-2:])
            grad = diff * 2.0 / scale if isinstance(scale, torch.Tensor) \
                else diff * (2.0 / scale)
        if grad_output is not None:  # dL/dloss, (M,) per member or a scalar
            grad *= grad_output.reshape(-1, 1, 1) if self.members else grad_output
        return grad

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward(pred, target)


# one class per ``hparams.ACTIVATIONS`` name (a test keeps the two in step)
ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "identity": Identity,
}


def mlp(sizes: list[int], activation: str = "tanh", members: int | None = None,
        dtype: torch.dtype = torch.float32) -> Sequential:
    """``Linear(sizes[0], sizes[1]), act, …, Linear(sizes[-2], sizes[-1])``; no activation at the end."""
    key = hparams.check("activation", activation.lower() if isinstance(activation, str)
                        else activation)
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {sizes!r}")
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(n_in, n_out, members=members, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[key]())
    return Sequential(*layers)


def parameter_count(model: Module) -> int:
    return sum(p.numel() for p, _ in model.param())
