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
dimension first (``Linear(..., members=M)``).  A population's buffer is
*member-major* — ``(M, P)``, each member's ``P`` values side by side — so a
per-member value is one ``(M, 1)`` tensor broadcast over it, and even Adam's
per-step bias corrections cost one pass for all members.

Why this module is long: three optimizers share one base that owns the flat
buffers, the per-member hyperparameters and weight decay; each update rule is
a dozen lines under its maths, and splitting them would part the rules from
the buffer machinery they all use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import hparams
from .nn import ParamGrad

Hyper = float | Sequence[float] | torch.Tensor


def members_of(tensors: list[torch.Tensor]) -> int | None:
    """``M`` when ``tensors`` are a population's parameters (every one ``(M, …, …)``: three
    dimensions, the member first, as ``Linear(..., members=M)`` makes them), else ``None``."""
    if all(t.dim() == 3 for t in tensors) and len({t.shape[0] for t in tensors}) == 1:
        return tensors[0].shape[0]
    return None


def _inner_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def flatten_(tensors: list[torch.Tensor], members: int | None = None) -> torch.Tensor:
    """Return a 1-D tensor whose storage holds ``tensors`` back to back.

    With ``members=M`` the buffer is *member-major*: ``(M, P)`` with each member's ``P``
    values of all tensors side by side, so a per-member value is one ``(M, 1)``
    broadcast over ``buffer.view(M, P)`` (each tensor is then a view with stride ``P``
    on its member dimension).  If the tensors already tile one storage that way, that
    storage is returned as is; otherwise their values are copied into a new buffer and
    each tensor is re-pointed (in place) at its slice of it.
    """
    rows = members or 1
    widths = [t.numel() // rows for t in tensors]
    width = sum(widths)
    first = tensors[0]
    storage = first.untyped_storage()
    base = first.storage_offset()
    offset, tiled = base, True
    for t, w in zip(tensors, widths):
        inner = t.shape[1:] if members else t.shape
        strides = ((width,) if members else ()) + _inner_strides(inner)
        if (t.untyped_storage().data_ptr() != storage.data_ptr() or t.dtype != first.dtype
                or t.storage_offset() != offset or (t.numel() > 1 and t.stride() != strides)):
            tiled = False
            break
        offset += w
    if tiled:
        return torch.empty(0, dtype=first.dtype).set_(storage, base, (rows * width,))
    buffer = torch.cat([t.reshape(rows, -1) for t in tensors], dim=1).reshape(-1)
    offset = 0
    for t, w in zip(tensors, widths):
        inner = t.shape[1:] if members else t.shape
        strides = ((width,) if members else ()) + _inner_strides(inner)
        t.set_(buffer.untyped_storage(), offset, t.shape, strides)
        offset += w
    return buffer


class Optimizer:
    """Holds the flat parameter / gradient buffers and per-member hyperparameters.

    A subclass names itself (``name``, a key of ``hparams``' ``optimizer``
    choices); the settings table says which hyperparameters it reads
    (``hparams.optimizer_keys``) and what values they may take.  Every value
    is checked there, at construction and in ``set_hyperparameters`` alike.

    Update rules work on ``(rows, P)`` views of the flat buffers (``rows`` = the
    members, or 1), and every hyperparameter is held as a tensor that broadcasts
    over them: ``()`` for one value, ``(M, 1)`` for one per member.  One elementwise
    op then updates every parameter of every member (and a 0-d tensor is cheaper
    for torch to take than a Python float).
    """

    name: str
    counts_steps = False  # whether the update reads ``step_count`` (Adam's bias correction)

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
        self.members = members_of([p for p, _ in params])
        self.flat_param = flatten_([p for p, _ in params], self.members)
        self.flat_grad = flatten_([g for _, g in params], self.members)
        self.rows = self.members or 1
        self._param = self.flat_param.view(self.rows, -1)  # (rows, P)
        self._grad = self.flat_grad.view(self.rows, -1)
        self.step_count = 0
        self.hyper: dict[str, float | torch.Tensor] = {}
        self._decayed: torch.Tensor | None = None  # g + λθ + λ₁·sign(θ), when a penalty is on
        self.set_hyperparameters(**hypers)

    def _zeros(self) -> torch.Tensor:
        """A state buffer shaped like ``(rows, P)``; made outside inference mode, so that
        it stays an ordinary tensor when the first step runs inside it."""
        with torch.inference_mode(False):
            return torch.zeros_like(self._param)

    @classmethod
    def from_settings(cls, params: list[ParamGrad], **settings: Hyper) -> Optimizer:
        """Build from flat settings (``lr``, ``beta1``, …): the keys this optimizer reads are
        taken, missing ones get its defaults (``hparams.optimizer_defaults``, as its
        constructor's), other optimizers' keys are ignored."""
        values = {k: settings.get(k, default)
                  for k, default in hparams.optimizer_defaults(cls.name).items()}
        return cls(params, **cls._arguments(values))

    @staticmethod
    def _arguments(values: dict[str, Hyper]) -> dict[str, Hyper]:
        """Flat settings as the constructor's arguments (Adam's take ``betas`` as a pair)."""
        return values

    def set_hyperparameters(self, **hypers: Hyper) -> None:
        """Change hyperparameters between steps (state is kept); each value is checked by the
        settings table first, so a bad one changes nothing.

        ``self.hyper[name]`` keeps each value compact (a float, or a float64 tensor of one
        value per member); the attribute of the same name holds it as a tensor that
        broadcasts over the ``(rows, P)`` buffers, ready for elementwise use.
        """
        unknown = sorted(set(hypers) - set(self.keys))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no hyperparameter "
                             f"{', '.join(map(repr, unknown))}; it reads {', '.join(self.keys)}")
        compact = {name: self._compact(name, value) for name, value in hypers.items()}
        self._store(compact)

    def _store(self, compact: dict[str, float | torch.Tensor]) -> None:
        with torch.inference_mode(False):
            for name, value in compact.items():
                self.hyper[name] = value
                setattr(self, name, self._expand(value))
            self._neg_lr = self._expand(-self.hyper["lr"])
            lr = self.hyper["lr"]
            if isinstance(lr, torch.Tensor):  # for ``_divide_step_``: −1/η, and ∞ where η = 0
                live = lr > 0
                self._inv_lr = torch.where(live, -1.0 / lr, 0.0)
                self._frozen = torch.where(live, 0.0, math.inf)
            self._derived()

    def _derived(self) -> None:
        """Recompute what a subclass derives from its hyperparameters (e.g. 1 − β)."""

    def _compact(self, name: str, value: Hyper) -> float | torch.Tensor:
        """A checked float, or a checked 1-D float64 tensor of one value per member."""
        if not isinstance(value, (torch.Tensor, Sequence)) or isinstance(value, str):
            return hparams.check(name, value)
        values = value.flatten().tolist() if isinstance(value, torch.Tensor) else list(value)
        if not values:
            raise ValueError(f"Invalid {hparams.label(name)}: no per-member values given")
        per_member = torch.tensor([hparams.check(name, v) for v in values], dtype=torch.float64)
        if self.members != per_member.numel():
            shape = tuple(self.params[0][0].shape)
            raise ValueError(f"{per_member.numel()} per-member values given, but the parameters "
                             f"are not a population of that many members (the first has shape "
                             f"{shape}; a population's are (members, …, …))")
        return per_member

    def _expand(self, compact: float | torch.Tensor) -> torch.Tensor:
        """A 0-d tensor for one value, ``(M, 1)`` for one per member: either broadcasts over
        the ``(rows, P)`` buffers."""
        if isinstance(compact, torch.Tensor):
            return compact.to(self.flat_param.dtype).view(-1, 1)
        return torch.tensor(compact, dtype=self.flat_param.dtype)

    def _gradient(self) -> torch.Tensor:
        """The gradient the update uses, ``(rows, P)``: ``g + λθ + λ₁·sign(θ)`` with coupled
        L2 weight decay λ (as PyTorch's optimizers' ``weight_decay``) and the L1 penalty
        λ₁·Σ|θ|'s subgradient (sign(0) = 0), else ``g`` itself.  The stored gradient is left
        as it is, so it still accumulates across ``backward`` calls."""
        decay, l1 = self.hyper["weight_decay"], self.hyper["l1"]
        if _off(decay) and _off(l1):
            return self._grad
        if self._decayed is None:
            self._decayed = self._zeros()
        out = self._decayed
        if _off(decay):
            out.copy_(self._grad)
        else:  # two passes: faster here than one addcmul with a broadcast (M, 1) factor
            torch.mul(self._param, self.weight_decay, out=out).add_(self._grad)
        if not _off(l1):
            out.add_(torch.sign(self._param).mul_(self.l1))
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
        count = self.rows
        mask = torch.zeros(count, dtype=torch.bool)
        mask[members] = True
        lr = self.hyper["lr"]
        lr = lr.clone() if isinstance(lr, torch.Tensor) else torch.full(
            (count,), lr, dtype=torch.float64)
        self._store({"lr": lr.masked_fill(mask, 0.0)})
        rows = mask.view(-1, 1)
        self._param.masked_fill_(rows, 0.0)
        self._grad.masked_fill_(rows, 0.0)
        for state in self._state():
            state.masked_fill_(rows, 0.0)

    def _state(self) -> list[torch.Tensor]:
        return []

    def state(self) -> dict:
        """A copy of what training has changed: parameters, step count, state buffers
        (momentum, moments).  ``load_state`` puts it back into an optimizer built alike."""
        return {"param": self.flat_param.clone(), "step_count": self.step_count,
                "buffers": [t.clone() for t in self._state()]}

    def load_state(self, state: dict) -> None:
        """Restore ``state()`` of an optimizer of the same class, parameter shapes and
        hyperparameters (``ValueError`` for another's)."""
        buffers = state["buffers"]
        if not buffers and self._state():
            raise ValueError(f"this {type(self).__name__} state has no state buffers")
        if buffers and not self._state():  # SGD allocates its momentum when first needed
            self._allocate_state()
        mine = self._state()
        if state["param"].shape != self.flat_param.shape or len(buffers) != len(mine) or any(
                b.shape != t.shape for b, t in zip(buffers, mine)):
            raise ValueError(f"this {type(self).__name__} state is of other parameters")
        self.flat_param.copy_(state["param"])
        for t, b in zip(mine, buffers):
            t.copy_(b)
        self.step_count = int(state["step_count"])

    def _allocate_state(self) -> None:
        raise ValueError(f"{type(self).__name__} keeps no state buffers")

    def _denominator(self, scale: float | torch.Tensor, shift: float | torch.Tensor
                     ) -> tuple[float | torch.Tensor, float | torch.Tensor, float]:
        """What ``_divide_step_`` applies for ``θ ← θ − η · n / (d·scale + shift)``, with
        ``scale`` and ``shift`` floats or one per member: ``d ← d·a + b``, then
        ``θ ← θ + c · n / d``.

        One η per member is folded into the denominator, ``(d·scale + shift) / (−η)`` and
        ``c = 1``, so the update is one ``addcdiv_``, as with a shared η (``c = −η``): a
        pass over the buffers fewer.  A frozen member (η = 0) gets the denominator ∞,
        hence a zero step.
        """
        lr = self.hyper["lr"]
        if isinstance(lr, torch.Tensor):
            inv = self._inv_lr
            return self._expand(scale * inv), self._expand(self._frozen + shift * inv), 1.0
        if isinstance(scale, torch.Tensor) or isinstance(shift, torch.Tensor):
            return self._expand(scale), self._expand(shift), -lr
        return scale, shift, -lr

    def _divide_step_(self, numerator: torch.Tensor, d: torch.Tensor,
                      factors: tuple[float | torch.Tensor, float | torch.Tensor, float]) -> None:
        """``d ← d·a + b`` (in place: two passes, ~2× faster here than one ``addcmul``
        with broadcast factors), then ``θ ← θ + c · numerator / d``; ``(a, b, c)`` from
        ``_denominator``."""
        a, b, c = factors
        if isinstance(a, torch.Tensor) or a != 1.0:
            d.mul_(a)
        d.add_(b)
        self._param.addcdiv_(numerator, d, value=c)


def _off(value: float | torch.Tensor) -> bool:
    """A penalty that is 0 for everyone (per-member values are a tensor: never off)."""
    return not isinstance(value, torch.Tensor) and value == 0.0


# each optimizer's defaults: the settings table's (``hparams.optimizer_defaults``)
_SGD, _ADAM, _RMSPROP = (hparams.optimizer_defaults(name) for name in ("sgd", "adam", "rmsprop"))


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

    def __init__(self, params: list[ParamGrad], lr: Hyper = _SGD["lr"],
                 momentum: Hyper = _SGD["momentum"], weight_decay: Hyper = _SGD["weight_decay"],
                 l1: Hyper = _SGD["l1"]):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, l1=l1)

    def _derived(self) -> None:
        if not hasattr(self, "buffer"):
            self.buffer: torch.Tensor | None = None  # momentum, allocated when first needed

    def step(self) -> None:
        self.step_count += 1
        direction = self._gradient()
        momentum = self.hyper["momentum"]
        if isinstance(momentum, torch.Tensor) or momentum != 0.0:
            if self.buffer is None:
                self.buffer = self._zeros()
            direction = self.buffer.mul_(self.momentum).add_(direction)
        lr = self.hyper["lr"]
        if isinstance(lr, torch.Tensor):
            self._param.addcmul_(direction, self._neg_lr)
        else:
            self._param.add_(direction, alpha=-lr)

    def _state(self) -> list[torch.Tensor]:
        return [] if self.buffer is None else [self.buffer]

    def _allocate_state(self) -> None:
        self.buffer = self._zeros()


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
    counts_steps = True

    def __init__(self, params: list[ParamGrad], lr: Hyper = _ADAM["lr"],
                 betas: tuple[Hyper, Hyper] = (_ADAM["beta1"], _ADAM["beta2"]),
                 eps: Hyper = _ADAM["eps"], weight_decay: Hyper = _ADAM["weight_decay"],
                 l1: Hyper = _ADAM["l1"]):
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"Invalid betas: {betas!r} (expected a pair (beta1, beta2))")
        super().__init__(params, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=weight_decay, l1=l1)

    @staticmethod
    def _arguments(values: dict[str, Hyper]) -> dict[str, Hyper]:
        betas = (values.pop("beta1"), values.pop("beta2"))
        return {**values, "betas": betas}

    def _derived(self) -> None:
        if not hasattr(self, "exp_avg"):
            self.exp_avg, self.exp_avg_sq, self._scratch = (self._zeros() for _ in range(3))
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
        # b = 1−β1ᵗ and a = b/c: a and ε·b depend only on a member's betas, so they are
        # computed per member (in float64, as PyTorch's floats) and broadcast over its row
        b = 1 - h["beta1"] ** t
        a, eps_b = b / (1 - h["beta2"] ** t) ** 0.5, h["eps"] * b
        self._divide_step_(self.exp_avg, torch.sqrt(self.exp_avg_sq, out=d),
                           self._denominator(a, eps_b))

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

    def __init__(self, params: list[ParamGrad], lr: Hyper = _RMSPROP["lr"],
                 rho: Hyper = _RMSPROP["rho"], eps: Hyper = _RMSPROP["eps"],
                 weight_decay: Hyper = _RMSPROP["weight_decay"], l1: Hyper = _RMSPROP["l1"]):
        super().__init__(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, l1=l1)

    def _derived(self) -> None:
        if not hasattr(self, "square_avg"):
            self.square_avg, self._scratch = self._zeros(), self._zeros()
        self._one_minus_rho = self._expand(1 - self.hyper["rho"])
        self._factors = self._denominator(1.0, self.hyper["eps"])  # fixed between changes

    def step(self) -> None:
        self.step_count += 1
        g, d = self._gradient(), self._scratch
        self.square_avg.lerp_(torch.mul(g, g, out=d), self._one_minus_rho)
        self._divide_step_(g, torch.sqrt(self.square_avg, out=d), self._factors)

    def _state(self) -> list[torch.Tensor]:
        return [self.square_avg]


# one class per ``hparams.OPTIMIZERS`` name (a test keeps the two in step)
OPTIMIZERS: dict[str, type[Optimizer]] = {c.name: c for c in (SGD, Adam, RMSprop)}


def make(name: str, params: list[ParamGrad], **settings: Hyper) -> Optimizer:
    """Build an optimizer by name from flat settings (``lr``, ``beta1``, …, as in ``Config``):
    its own keys are used (its defaults where missing, as its constructor's), others
    ignored."""
    key = hparams.check("optimizer", name.lower() if isinstance(name, str) else name)
    return OPTIMIZERS[key].from_settings(params, **settings)
