"""Optimizers: SGD (with momentum), Adam and RMSprop, each with coupled L2 weight decay and
an L1 penalty (its subgradient added to the gradient).

An optimizer receives ``model.param()`` — a list of ``(parameter, gradient)``
pairs — and owns its state (momentum, moment estimates).  Layers know nothing
about optimizers.  Which hyperparameters each optimizer reads, their defaults
and their valid ranges come from the settings table (``minidl.hparams``).

Speed: on construction every parameter (and every gradient) is made a view of
one flat buffer, unless it already is one, so that each update is a handful of
fused elementwise ops over all parameters at once instead of a Python loop
over tensors.  The parameter tensor objects stay the same (``Tensor.set_``
re-points their storage), so the module never notices.

Population training: every hyperparameter may be a float or a sequence /
1-D tensor with one value per member; parameters then carry the member
dimension first (``Linear(..., members=M)``) and each member's value is
broadcast to its own entries of the flat buffer.

Why this module is long: three optimizers share one base that owns the flat
buffers, the per-member hyperparameters and weight decay; each update rule is
a dozen lines under its maths, and splitting them would part the rules from
the buffer machinery they all use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import hparams
from .nn import ParamGrad

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


class Optimizer:
    """Holds the flat parameter / gradient buffers and per-member hyperparameters.

    A subclass names itself (``name``, a key of ``hparams``' ``optimizer``
    choices); the settings table says which hyperparameters it reads
    (``hparams.optimizer_keys``) and what values they may take.  Every value
    is checked there, at construction and in ``set_hyperparameters`` alike.
    """

    name: str

    def __init__(self, params: list[ParamGrad], **hypers: Hyper):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for pg in params:
            if not (isinstance(pg, tuple) and len(pg) == 2
                    and all(isinstance(t, torch.Tensor) for t in pg)):
                raise TypeError("params must be a list of (parameter, gradient) tensor pairs, "
                                f"as returned by Module.param(); got {type(pg).__name__}")
        self.keys = hparams.optimizer_keys(self.name)
        missing = [k for k in self.keys if k not in hypers]
        if missing:
            raise TypeError(f"{type(self).__name__} needs {', '.join(missing)}")
        self.params = params
        self.flat_param = flatten_([p for p, _ in params])
        self.flat_grad = flatten_([g for _, g in params])
        self.step_count = 0
        self.hyper: dict[str, float | torch.Tensor] = {}
        self._decayed: torch.Tensor | None = None  # g + λθ + λ₁·sign(θ), when a penalty is on
        self.set_hyperparameters(**hypers)

    @classmethod
    def from_settings(cls, params: list[ParamGrad], **settings: Hyper) -> Optimizer:
        """Build from flat settings (``lr``, ``beta1``, …): the keys this optimizer reads are
        taken, missing ones get the table's defaults, other optimizers' keys are ignored."""
        optimizer = cls.__new__(cls)
        Optimizer.__init__(optimizer, params, **{
            k: settings.get(k, hparams.TABLE[k].default) for k in hparams.optimizer_keys(cls.name)})
        return optimizer

    def set_hyperparameters(self, **hypers: Hyper) -> None:
        """Change hyperparameters between steps (state is kept); each value is checked by the
        settings table first, so a bad one changes nothing.

        ``self.hyper[name]`` keeps each value compact (a float, or one value per
        member); the attribute of the same name holds it broadcast to the flat
        buffer, ready for elementwise use.
        """
        unknown = sorted(set(hypers) - set(self.keys))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyperparameter "
                             f"{', '.join(map(repr, unknown))}; it reads {', '.join(self.keys)}")
        compact = {name: self._compact(name, value) for name, value in hypers.items()}
        self._store(compact)

    def _store(self, compact: dict[str, float | torch.Tensor]) -> None:
        for name, value in compact.items():
            self.hyper[name] = value
            setattr(self, name, self._expand(value))
        self._neg_lr = self._expand(-self.hyper["lr"])
        self._derived()

    def _derived(self) -> None:
        """Recompute what a subclass derives from its hyperparameters (e.g. 1 − β)."""

    def _compact(self, name: str, value: Hyper) -> float | torch.Tensor:
        """A checked float, or a checked 1-D tensor of one value per member."""
        if not isinstance(value, (torch.Tensor, Sequence)) or isinstance(value, str):
            return hparams.check(name, value)
        values = value.flatten().tolist() if isinstance(value, torch.Tensor) else list(value)
        if not values:
            raise ValueError(f"Invalid {hparams.label(name)}: no per-member values given")
        per_member = torch.tensor([hparams.check(name, v) for v in values],
                                  dtype=self.flat_param.dtype)
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

    def _gradient(self) -> torch.Tensor:
        """The gradient the update uses: ``g + λθ + λ₁·sign(θ)`` with coupled L2 weight decay
        λ (as PyTorch's optimizers' ``weight_decay``) and the L1 penalty λ₁·Σ|θ|'s
        subgradient (sign(0) = 0), else ``g`` itself.  The stored gradient is left as it
        is, so it still accumulates across ``backward`` calls."""
        decay, l1 = self.weight_decay, self.l1
        if _off(decay) and _off(l1):
            return self.flat_grad
        if self._decayed is None:
            self._decayed = torch.empty_like(self.flat_grad)
        out = self._decayed
        if _off(decay):
            out.copy_(self.flat_grad)
        elif isinstance(decay, torch.Tensor):
            torch.addcmul(self.flat_grad, self.flat_param, decay, out=out)
        else:
            torch.add(self.flat_grad, self.flat_param, alpha=decay, out=out)
        if not _off(l1):
            _add_scaled_(out, torch.sign(self.flat_param), l1)
        return out

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    def step(self) -> None:
        raise NotImplementedError

    def freeze_members(self, members: torch.Tensor) -> None:
        """Stop updating the given members (a bool mask or indices) and clear their state.

        Used for diverged members of a population: their parameters are zeroed
        so that no NaN/inf travels on, and their learning rate is set to 0
        (below the table's range, hence stored without the check).
        """
        count = self.params[0][0].shape[0]
        mask = torch.zeros(count, dtype=torch.bool)
        mask[members] = True
        lr = self.hyper["lr"]
        lr = lr.clone() if isinstance(lr, torch.Tensor) else torch.full((count,), lr)
        self._store({"lr": lr.masked_fill(mask, 0.0)})
        element_mask = self._expand(mask.to(self.flat_param.dtype)).bool()
        self.flat_param.masked_fill_(element_mask, 0.0)
        self.flat_grad.masked_fill_(element_mask, 0.0)
        for state in self._state():
            state.masked_fill_(element_mask, 0.0)

    def _state(self) -> list[torch.Tensor]:
        return []


def _off(value: float | torch.Tensor) -> bool:
    """A penalty that is 0 for everyone (per-member values are a tensor: never off)."""
    return not isinstance(value, torch.Tensor) and value == 0.0


def _add_scaled_(target: torch.Tensor, x: torch.Tensor, scale: float | torch.Tensor) -> None:
    """``target += scale · x`` for a scalar or an elementwise ``scale``."""
    if isinstance(scale, torch.Tensor):
        target.addcmul_(x, scale)
    else:
        target.add_(x, alpha=scale)


_DEFAULT = {k: hparams.TABLE[k].default
            for k in ("beta1", "beta2", "rho", "eps", "weight_decay", "l1")}


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (heavy-ball) momentum and weight decay.

    .. math::
        g_t \leftarrow g_t + \lambda \theta_{t-1} + \lambda_1 \operatorname{sign}\theta_{t-1},
        \qquad
        b_t = \mu\, b_{t-1} + g_t \quad (b_0 = 0), \qquad
        \theta_t = \theta_{t-1} - \eta\, b_t

    With ``momentum = 0`` this is ``θ ← θ − η g``.  Same as PyTorch's ``SGD``.
    """

    name = "sgd"

    def __init__(self, params: list[ParamGrad], lr: Hyper, momentum: Hyper = 0.0,
                 weight_decay: Hyper = _DEFAULT["weight_decay"], l1: Hyper = _DEFAULT["l1"]):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, l1=l1)

    def _derived(self) -> None:
        if not hasattr(self, "buffer"):
            self.buffer: torch.Tensor | None = None  # momentum, allocated when first needed

    def step(self) -> None:
        self.step_count += 1
        direction = self._gradient()
        if isinstance(self.momentum, torch.Tensor) or self.momentum != 0.0:
            if self.buffer is None:
                self.buffer = torch.zeros_like(self.flat_param)
            direction = self.buffer.mul_(self.momentum).add_(direction)
        _add_scaled_(self.flat_param, direction, self._neg_lr)

    def _state(self) -> list[torch.Tensor]:
        return [] if self.buffer is None else [self.buffer]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), with PyTorch's placement of ε and bias correction.

    .. math::
        g_t \leftarrow g_t + \lambda \theta_{t-1} + \lambda_1 \operatorname{sign}\theta_{t-1},
        \qquad
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Same as PyTorch's ``Adam`` (its weight decay is the coupled L2 one, not AdamW's).
    """

    name = "adam"

    def __init__(self, params: list[ParamGrad], lr: Hyper = 1e-3,
                 betas: tuple[Hyper, Hyper] = (_DEFAULT["beta1"], _DEFAULT["beta2"]),
                 eps: Hyper = _DEFAULT["eps"], weight_decay: Hyper = _DEFAULT["weight_decay"],
                 l1: Hyper = _DEFAULT["l1"]):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
        super().__init__(params, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=weight_decay, l1=l1)

    def _derived(self) -> None:
        if not hasattr(self, "exp_avg"):
            self.exp_avg = torch.zeros_like(self.flat_param)
            self.exp_avg_sq = torch.zeros_like(self.flat_param)
            self._scratch = torch.empty_like(self.flat_param)
        self._one_minus_beta1 = self._expand(1 - self.hyper["beta1"])
        self._one_minus_beta2 = self._expand(1 - self.hyper["beta2"])

    def step(self) -> None:
        self.step_count += 1
        t = self.step_count
        h = self.hyper
        g, d = self._gradient(), self._scratch
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

    def _state(self) -> list[torch.Tensor]:
        return [self.exp_avg, self.exp_avg_sq]


class RMSprop(Optimizer):
    r"""RMSProp (Hinton), with PyTorch's placement of ε.

    .. math::
        g_t \leftarrow g_t + \lambda \theta_{t-1} + \lambda_1 \operatorname{sign}\theta_{t-1},
        \qquad
        v_t = \rho\, v_{t-1} + (1-\rho) g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{v_t} + \epsilon}

    Same as PyTorch's ``RMSprop(alpha=rho)``.
    """

    name = "rmsprop"

    def __init__(self, params: list[ParamGrad], lr: Hyper = 1e-2, rho: Hyper = _DEFAULT["rho"],
                 eps: Hyper = _DEFAULT["eps"], weight_decay: Hyper = _DEFAULT["weight_decay"],
                 l1: Hyper = _DEFAULT["l1"]):
        super().__init__(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, l1=l1)

    def _derived(self) -> None:
        if not hasattr(self, "square_avg"):
            self.square_avg = torch.zeros_like(self.flat_param)
            self._scratch = torch.empty_like(self.flat_param)
        self._one_minus_rho = self._expand(1 - self.hyper["rho"])

    def step(self) -> None:
        self.step_count += 1
        g, d = self._gradient(), self._scratch
        self.square_avg.lerp_(torch.mul(g, g, out=d), self._one_minus_rho)
        torch.sqrt(self.square_avg, out=d).add_(self.eps)
        torch.div(g, d, out=d)
        _add_scaled_(self.flat_param, d, self._neg_lr)

    def _state(self) -> list[torch.Tensor]:
        return [self.square_avg]


# one class per ``hparams.OPTIMIZERS`` name (a test keeps the two in step)
OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Adam, RMSprop)}


def make(name: str, params: list[ParamGrad], **settings: Hyper) -> Optimizer:
    """Build an optimizer by name from flat settings (``lr``, ``beta1``, …, as in
    ``train.Config``): its own keys are used (table defaults where missing), others ignored."""
    key = hparams.check("optimizer", name.lower() if isinstance(name, str) else name)
    return OPTIMIZERS[key].from_settings(params, **settings)
