"""Optimizers: SGD (with momentum), Adam and RMSprop.

An optimizer receives ``model.param()`` — a list of ``(parameter, gradient)``
pairs — and owns its state (momentum, moment estimates).  Layers know nothing
about optimizers.

Speed: on construction every parameter (and every gradient) is made a view of
one flat buffer, unless it already is one, so that each update is a handful of
fused elementwise ops over all parameters at once instead of a Python loop
over tensors.  The parameter tensor objects stay the same (``Tensor.set_``
re-points their storage), so the module never notices.

Population training: every hyperparameter may be a float or a sequence /
1-D tensor with one value per member; parameters then carry the member
dimension first (``Linear(..., members=M)``) and each member's value is
broadcast to its own entries of the flat buffer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .nn import Pair

Hyper = float | Sequence[float] | torch.Tensor


def flatten_(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Return a 1-D tensor whose storage holds ``tensors`` back to back.

    If they already tile one storage in order, that storage is returned as is;
    otherwise their values are copied into a new buffer and each tensor is
    re-pointed (in place) at its slice of it.
    """
    total = sum(t.numel() for t in tensors)
    first = tensors[0]
    storage = first.untyped_storage()
    offset = first.storage_offset()
    tiled = True
    for t in tensors:
        if (t.untyped_storage().data_ptr() != storage.data_ptr() or not t.is_contiguous()
                or t.storage_offset() != offset or t.dtype != first.dtype):
            tiled = False
            break
        offset += t.numel()
    if tiled:
        return torch.empty(0, dtype=first.dtype).set_(storage, first.storage_offset(), (total,))
    buffer = torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.empty(0)
    offset = 0
    for t in tensors:
        n = t.numel()
        shape = t.shape
        t.set_(buffer.untyped_storage(), offset, shape, torch.empty(shape).stride())
        offset += n
    return buffer


def _check(name: str, value: Hyper, low: float, high: float | None, *,
           closed_low: bool = False) -> None:
    values = value.flatten().tolist() if isinstance(value, torch.Tensor) else (
        list(value) if isinstance(value, Sequence) else [value])
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (v >= low if closed_low else v > low) and (high is None or v < high)
        if not ok:
            bound = f"in [{low}, {high})" if high is not None else (
                f">= {low}" if closed_low else f"> {low}")
            raise ValueError(f"Invalid {name}: {v!r} (expected a finite number {bound})")


class Optimizer:
    """Holds the flat parameter / gradient buffers and per-member hyperparameters."""

    def __init__(self, params: list[Pair], hypers: dict[str, Hyper]):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for pair in params:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError("params must be a list of (parameter, gradient) pairs, "
                                f"as returned by Module.param(); got {type(pair).__name__}")
        self.params = params
        self.flat_param = flatten_([p for p, _ in params])
        self.flat_grad = flatten_([g for _, g in params])
        self.step_count = 0
        self.hyper: dict[str, float | torch.Tensor] = {}
        self.set_hyperparameters(**hypers)

    def set_hyperparameters(self, **hypers: Hyper) -> None:
        """Change hyperparameters between steps (state is kept).

        ``self.hyper[name]`` keeps each value compact (a float, or one value per
        member); the attribute of the same name holds it broadcast to the flat
        buffer, ready for elementwise use.
        """
        for name, value in hypers.items():
            self.hyper[name] = self._compact(value)
            setattr(self, name, self._expand(self.hyper[name]))
        self._neg_lr = self._expand(-self.hyper["lr"])

    def _compact(self, value: Hyper) -> float | torch.Tensor:
        if not isinstance(value, (torch.Tensor, Sequence)):
            return float(value)
        per_member = torch.as_tensor(value, dtype=self.flat_param.dtype).flatten()
        for p, _ in self.params:
            if p.dim() == 0 or p.shape[0] != per_member.numel():
                raise ValueError(f"{per_member.numel()} per-member values given, but a parameter "
                                 f"has shape {tuple(p.shape)} (expected that leading dimension)")
        return per_member

    def _expand(self, compact: float | torch.Tensor) -> float | torch.Tensor:
        """A float stays a float; per-member values are repeated over each member's entries."""
        if not isinstance(compact, torch.Tensor):
            return compact
        return torch.cat([compact.view(-1, *[1] * (p.dim() - 1)).expand_as(p).reshape(-1)
                          for p, _ in self.params])

    def _affine_(self, flat: torch.Tensor, scale: float | torch.Tensor,
                 shift: float | torch.Tensor) -> None:
        """``flat = flat · scale + shift`` for floats or per-member values (one per member)."""
        if not isinstance(scale, torch.Tensor) and not isinstance(shift, torch.Tensor):
            flat.mul_(scale).add_(shift)
            return
        scale = torch.as_tensor(scale, dtype=flat.dtype).reshape(-1, 1)
        shift = torch.as_tensor(shift, dtype=flat.dtype).reshape(-1, 1)
        members = max(scale.shape[0], shift.shape[0])
        offset = 0
        for p, _ in self.params:
            segment = flat[offset:offset + p.numel()].view(members, -1)
            segment.mul_(scale).add_(shift)  # two in-place ops beat one addcmul with out=
            offset += p.numel()

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def step(self) -> None:
        raise NotImplementedError

    def freeze_members(self, members: torch.Tensor) -> None:
        """Stop updating the given members (a bool mask or indices) and clear their state.

        Used for diverged members of a population: their parameters are zeroed
        so that no NaN/inf travels on, and their learning rate is set to 0.
        """
        count = self.params[0][0].shape[0]
        mask = torch.zeros(count, dtype=torch.bool)
        mask[members] = True
        lr = self.hyper["lr"]
        lr = lr.clone() if isinstance(lr, torch.Tensor) else torch.full((count,), lr)
        self.set_hyperparameters(lr=lr.masked_fill(mask, 0.0))
        element_mask = self._expand(mask.to(self.flat_param.dtype)).bool()
        self.flat_param.masked_fill_(element_mask, 0.0)
        self.flat_grad.masked_fill_(element_mask, 0.0)
        for state in self._state():
            state.masked_fill_(element_mask, 0.0)

    def _state(self) -> list[torch.Tensor]:
        return []


def _add_scaled_(target: torch.Tensor, x: torch.Tensor, scale: float | torch.Tensor) -> None:
    """``target += scale · x`` for a scalar or an elementwise ``scale``."""
    if isinstance(scale, torch.Tensor):
        target.addcmul_(x, scale)
    else:
        target.add_(x, alpha=scale)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (heavy-ball) momentum.

    .. math::
        b_t = \mu\, b_{t-1} + g_t \quad (b_0 = 0), \qquad
        \theta_t = \theta_{t-1} - \eta\, b_t

    With ``momentum = 0`` this is ``θ ← θ − η g``.  Same as PyTorch's ``SGD``.
    """

    def __init__(self, params: list[Pair], lr: Hyper, momentum: Hyper = 0.0):
        _check("learning rate", lr, 0.0, None)
        _check("momentum", momentum, 0.0, 1.0, closed_low=True)
        self.buffer: torch.Tensor | None = None
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def step(self) -> None:
        self.step_count += 1
        direction = self.flat_grad
        if isinstance(self.momentum, torch.Tensor) or self.momentum != 0.0:
            if self.buffer is None:
                self.buffer = torch.zeros_like(self.flat_param)
            direction = self.buffer.mul_(self.momentum).add_(self.flat_grad)
        _add_scaled_(self.flat_param, direction, self._neg_lr)

    def _state(self) -> list[torch.Tensor]:
        return [] if self.buffer is None else [self.buffer]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), with PyTorch's placement of ε and bias correction.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Same as PyTorch's ``Adam``.
    """

    def __init__(self, params: list[Pair], lr: Hyper = 1e-3,
                 betas: tuple[Hyper, Hyper] = (0.9, 0.999), eps: Hyper = 1e-8):
        _check("learning rate", lr, 0.0, None)
        _check("beta1", betas[0], 0.0, 1.0, closed_low=True)
        _check("beta2", betas[1], 0.0, 1.0, closed_low=True)
        _check("eps", eps, 0.0, None)
        super().__init__(params, {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps})
        self.exp_avg = torch.zeros_like(self.flat_param)
        self.exp_avg_sq = torch.zeros_like(self.flat_param)
        self._scratch = torch.empty_like(self.flat_param)

    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        h = self.hyper
        g, d = self.flat_grad, self._scratch
        self.exp_avg.lerp_(g, self._one_minus_beta1)
        self.exp_avg_sq.lerp_(torch.mul(g, g, out=d), self._one_minus_beta2)
        # η m / ((1−β1ᵗ)(√v/c + ε)), c = √(1−β2ᵗ), is η m / (√v·a + ε·b) with
        # b = 1−β1ᵗ and a = b/c: a and ε·b depend only on a member's betas, so
        # they are computed per member and applied to each member's entries
        b = 1 - h["beta1"] ** t
        torch.sqrt(self.exp_avg_sq, out=d)
        self._affine_(d, b / (1 - h["beta2"] ** t) ** 0.5, h["eps"] * b)
        torch.div(self.exp_avg, d, out=d)
        _add_scaled_(self.flat_param, d, self._neg_lr)

    def set_hyperparameters(self, **hypers: Hyper) -> None:
        super().set_hyperparameters(**hypers)
        self._one_minus_beta1 = self._expand(1 - self.hyper["beta1"])
        self._one_minus_beta2 = self._expand(1 - self.hyper["beta2"])

    def _state(self) -> list[torch.Tensor]:
        return [self.exp_avg, self.exp_avg_sq]


class RMSprop(Optimizer):
    r"""RMSProp (Hinton), with PyTorch's placement of ε.

    .. math::
        v_t = \rho\, v_{t-1} + (1-\rho) g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}

    Same as PyTorch's ``RMSprop(alpha=rho)``.
    """

    def __init__(self, params: list[Pair], lr: Hyper = 1e-2, rho: Hyper = 0.99,
                 eps: Hyper = 1e-8):
        _check("learning rate", lr, 0.0, None)
        _check("rho", rho, 0.0, 1.0, closed_low=True)
        _check("eps", eps, 0.0, None)
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})
        self.square_avg = torch.zeros_like(self.flat_param)
        self._scratch = torch.empty_like(self.flat_param)

    def step(self) -> None:
        self.step_count += 1
        g, d = self.flat_grad, self._scratch
        self.square_avg.lerp_(torch.mul(g, g, out=d), self._one_minus_rho)
        torch.sqrt(self.square_avg, out=d).add_(self.eps)
        torch.div(g, d, out=d)
        _add_scaled_(self.flat_param, d, self._neg_lr)

    def set_hyperparameters(self, **hypers: Hyper) -> None:
        super().set_hyperparameters(**hypers)
        self._one_minus_rho = self._expand(1 - self.hyper["rho"])

    def _state(self) -> list[torch.Tensor]:
        return [self.square_avg]


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def make(name: str, params: list[Pair], lr: Hyper, momentum: Hyper = 0.0,
         beta1: Hyper = 0.9, beta2: Hyper = 0.999, eps: Hyper = 1e-8,
         rho: Hyper = 0.99) -> Optimizer:
    """Build an optimizer by lowercase name from flat keyword hyperparameters."""
    key = name.lower() if isinstance(name, str) else name
    if key == "sgd":
        return SGD(params, lr=lr, momentum=momentum)
    if key == "adam":
        return Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
    if key == "rmsprop":
        return RMSprop(params, lr=lr, rho=rho, eps=eps)
    raise ValueError(f"unknown optimizer {name!r}; expected one of {tuple(OPTIMIZERS)}")
