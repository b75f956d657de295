"""The batched network: ``M`` networks of one shape computed as one.

Every tensor carries a leading *member* dimension: ``x : (M, batch, features)``,
weight ``(M, out, in)``, bias ``(M, 1, out)``.  Each member has its own weights,
its own rows and — in the activations and the loss — its own settings; one
batched matmul (``baddbmm`` / ``bmm``) does the work of ``M`` small ones, which is
where the engine's speed comes from: on networks this small, time goes to
per-op dispatch, not to arithmetic.

The maths is ``minidl.nn``'s, member by member (``tests/test_engine.py`` checks
each module against ``nn`` and autograd).  What differs is only how it is
computed: gradients are written, not added (a training step needs no
``zero_grad``), the first layer returns no input gradient (its input is data),
and a few shapes take a cheaper path (noted where they do).
"""

from __future__ import annotations

import torch

from .. import nn

# Elements from which ``Activation`` computes tanh as 2σ(2x) − 1 (within 2e-7 of tanh): on
# this project's CPUs torch's tanh takes ~3 ns an element, sigmoid ~1 ns, so a population's
# wide activations are faster that way, while a small tensor pays four calls' overhead.
TANH_BY_SIGMOID = 6144


class Linear:
    """``y = x Wᵀ + b`` for every member at once (``nn.Linear``'s maths, member by member)."""

    def __init__(self, members: int, in_features: int, out_features: int,
                 dtype: torch.dtype = torch.float32):
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise ValueError(f"Linear: members must be a positive integer, got {members!r}")
        nn.check_features(in_features, out_features, members)
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = torch.zeros(members, out_features, in_features, dtype=dtype)
        self.bias = torch.zeros(members, 1, out_features, dtype=dtype)
        self.grad_weight = torch.zeros_like(self.weight)
        self.grad_bias = torch.zeros_like(self.bias)
        self._input: torch.Tensor | None = None
        self._scratch: torch.Tensor | None = None  # dL/dW before it goes into grad_weight
        self._one: tuple[torch.Tensor, ...] | None = None  # one member: its 2-D views

    def _single(self) -> tuple[torch.Tensor, ...]:
        """A lone member's weight, bias and their gradients as 2-D / 1-D views.  Made at
        first use, once an optimizer has re-pointed the tensors into its buffers
        (``optim.flatten_``)."""
        if self._one is None:
            self._one = (self.weight[0], self.bias[0, 0], self.grad_weight[0],
                         self.grad_bias[0, 0])
        return self._one

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x : (members, batch, in_features)``, or ``(batch, in_features)`` for a population
        of one (unchecked: the population shapes it).  A run — the Playground's — is a
        population of one, and ``addmm`` / ``mm`` on its 2-D rows cost ~1–2.5 µs less per call
        than their batched twins, which at batch 1 is a fifth of a step."""
        self._input = x
        if x.dim() == 2:
            weight, bias, _, _ = self._single()
            return torch.addmm(bias, x, weight.t())
        return torch.baddbmm(self.bias, x, self.weight.transpose(1, 2))

    def backward(self, grad_output: torch.Tensor, input_grad: bool = True
                 ) -> torch.Tensor | None:
        """Write ``dL/dW`` and ``dL/db`` into the gradients; return ``dL/dx`` (``None`` with
        ``input_grad=False``)."""
        x, g = self._input, grad_output
        if x.dim() == 2:
            weight, _, grad_weight, grad_bias = self._single()
            torch.mm(g.t(), x, out=grad_weight)
            torch.sum(g, 0, out=grad_bias)
            return g.mm(weight) if input_grad else None
        g_t = g.transpose(1, 2)
        if x.shape[1] == 1:  # one row per member: an outer product, cheaper by broadcasting
            torch.mul(g_t, x, out=self.grad_weight)
        elif self.grad_weight.is_contiguous():
            torch.bmm(g_t, x, out=self.grad_weight)
        else:  # a view into an optimizer's member-major buffer: bmm into it is ~3× slower
            if self._scratch is None:
                with torch.inference_mode(False):  # an ordinary tensor, whatever the mode
                    self._scratch = torch.empty(self.weight.shape, dtype=self.weight.dtype)
            self.grad_weight.copy_(torch.bmm(g_t, x, out=self._scratch))
        torch.sum(g, 1, keepdim=True, out=self.grad_bias)
        return g.bmm(self.weight) if input_grad else None

    def param(self) -> list[nn.ParamGrad]:
        return [(self.weight, self.grad_weight), (self.bias, self.grad_bias)]

    def init_member(self, member: int, generator: torch.Generator, method: str, gain: float,
                    **conventions: str) -> None:
        """Member ``member``'s weights, drawn exactly as a lone ``nn.Linear`` would draw them
        from ``generator`` (``nn.init_weights``)."""
        nn.init_weights(self.weight[member], self.bias[member], method, gain, generator,
                        **conventions)


class Activation:
    """Each member's own activation: ``names[m]`` is member ``m``'s.

    With one activation for all, it is ``nn``'s module (Tanh through the sigmoid on wide
    tensors).  With several, each is applied to the whole ``(M, batch, features)`` tensor
    and ``torch.where`` keeps each member's own — on tensors this small every op costs its
    dispatch, not its elements, so two whole-tensor ops and a ``where`` are cheaper than
    slicing members apart and joining them again.  Backward then writes each activation's
    derivative in its output ``y`` as one polynomial ``d = c₀ + c₁·y + c₂·y² + c₃·sign(y)``
    with per-member coefficients — Tanh ``1 − y²``, Sigmoid ``y − y²``, ReLU ``sign(y)``
    (``[x > 0]``), Identity ``1`` — and ``dL/dx = d · dL/dy``.
    """

    # (c₀, c₁, c₂, c₃) of each activation's derivative in its output
    DERIVATIVES = {"tanh": (1.0, 0.0, -1.0, 0.0), "sigmoid": (0.0, 1.0, -1.0, 0.0),
                   "relu": (0.0, 0.0, 0.0, 1.0), "identity": (1.0, 0.0, 0.0, 0.0)}

    def __init__(self, names: list[str]):
        names = [nn.activation_name(n) for n in names]
        if not names:
            raise ValueError("Activation: no activations given")
        self.names = names
        self.layers = {k: nn.ACTIVATIONS[k]() for k in dict.fromkeys(names)}
        shape = (len(names), 1, 1)
        self.masks = {k: torch.tensor([n == k for n in names]).view(shape) for k in self.layers}
        c = torch.tensor([self.DERIVATIVES[n] for n in names])
        self.c0, self.c1, self.c2, self.c3 = (c[:, i].view(shape) for i in range(4))
        self.has_relu = "relu" in self.layers
        self._kinds = list(self.layers)
        self._single = self.layers[names[0]] if len(self.layers) == 1 else None
        self._tanh = "tanh" in self.layers

    def _forward(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        layer = self.layers[kind]
        if kind == "tanh" and x.numel() >= TANH_BY_SIGMOID:  # tanh x = 2σ(2x) − 1
            layer._output = torch.mul(x, 2.0).sigmoid_().mul_(2.0).sub_(1.0)
            return layer._output
        return layer.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self._single
        if single is not None and (not self._tanh or x.numel() < TANH_BY_SIGMOID):
            return single.forward(x)  # the common case, quickly
        kinds = self._kinds
        y = self._forward(kinds[0], x)
        for k in kinds[1:]:
            y = torch.where(self.masks[k], self._forward(k, x), y)
        self._output = y
        return y

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        if self._single is not None:
            return self._single.backward(grad_output)
        y = self._output
        d = torch.addcmul(self.c0, torch.addcmul(self.c1, self.c2, y), y)
        if self.has_relu:
            d.addcmul_(self.c3, torch.sign(y))
        return d.mul_(grad_output)

    def __repr__(self) -> str:
        return f"Activation({', '.join(self.names)})"


class Loss:
    """The gradient of each member's ``nn.LossMSE``: ``2 (pred − target) / D_m``, with member
    ``m``'s reduction picking ``D_m`` (the engine never needs the loss value of a step)."""

    def __init__(self, reductions: list[str]):
        self.reductions = [nn.LossMSE(r).reduction for r in reductions]
        self._divisors: dict[tuple[int, int], float | torch.Tensor] = {}  # per batch shape

    def _divisor(self, batch: int, outputs: int) -> float | torch.Tensor:
        """``D`` of every member: one float when they agree, else ``(M, 1, 1)``; made once
        per batch shape (the last batch of an epoch may be smaller)."""
        key = (batch, outputs)
        if key not in self._divisors:
            values = [float(nn.mse_divisor(r, batch, outputs)) for r in self.reductions]
            self._divisors[key] = (values[0] if len(set(values)) == 1
                                   else torch.tensor(values).view(-1, 1, 1))
        return self._divisors[key]

    def gradient(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = torch.sub(pred, target)
        scale = self._divisors.get(diff.shape[-2:])
        if scale is None:
            scale = self._divisor(*diff.shape[-2:])
        if isinstance(scale, torch.Tensor):
            return diff.mul_(2.0).div_(scale)
        return diff.mul_(2.0 / scale)


class Network:
    """Linear, Activation, …, Linear: the batched ``nn.mlp``."""

    def __init__(self, sizes: list[int], activations: list[str],
                 dtype: torch.dtype = torch.float32):
        sizes = nn.check_sizes(sizes)
        members = len(activations)
        self.sizes = sizes
        self.layers: list[Linear | Activation] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            self.layers.append(Linear(members, n_in, n_out, dtype))
            if i < len(sizes) - 2:
                self.layers.append(Activation(activations))
        self.linears = [layer for layer in self.layers if isinstance(layer, Linear)]
        self._backward = self.layers[:0:-1]  # every layer but the first, last first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output: torch.Tensor) -> None:
        """Write every gradient for the last ``forward``'s loss gradient ``grad_output``."""
        for layer in self._backward:
            grad_output = layer.backward(grad_output)
        self.layers[0].backward(grad_output, input_grad=False)

    def param(self) -> list[nn.ParamGrad]:
        return [pg for linear in self.linears for pg in linear.param()]

    def member(self, index: int, activation: str) -> nn.Sequential:
        """Member ``index`` as a plain ``nn`` network whose weights are views of this one's:
        what it computes is that member's, and training here moves it too."""
        modules: list[nn.Module] = []
        for i, linear in enumerate(self.linears):
            plain = nn.Linear(linear.in_features, linear.out_features, linear.weight.dtype)
            plain.weight, plain.bias = linear.weight[index], linear.bias[index].view(-1)
            modules.append(plain)
            if i < len(self.linears) - 1:
                modules.append(nn.ACTIVATIONS[activation]())
        return nn.Sequential(*modules)
