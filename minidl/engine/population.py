"""The population: the one training loop of minidl.

A *member* is one training run: its settings (activation, optimizer and its
hyperparameters, batch size, loss reduction, encodings, initialisation), the
rows of a shared data set it trains on, the rows it is evaluated on, and a
seed.  A ``Population`` trains members that share the shape of their work —
network sizes, input features, batch size, shuffling, and how many rows they
train and are evaluated on — as one batched network (``layers.Network``):

- each member's initial weights, then one permutation of its training rows per
  epoch, come from one generator seeded with its seed, so a member follows the
  same trajectory alone or among others, in any engine that draws this way;
- members may differ in activation (``layers.Activation``), in optimizer (one
  optimizer per run of members with the same one, each on its row slice of the
  member-major ``(M, P)`` buffer) and in every hyperparameter (per-member values);
- ``step(max_seconds)`` walks the minibatches of the current epoch — the only
  place in minidl that does — and at an epoch's end measures every member (when
  due) and freezes those that diverged (non-finite weights, or a training loss
  non-finite or past ``DIVERGED_LOSS``): weights zeroed, learning rate 0;
- ``state()`` / ``load_state()`` carry everything training changes (weights,
  optimizer state, generators, the epoch in progress) to another process and back.

``Run`` (a population of one), ``Race`` (contestants grouped into populations)
and ``fit`` (sweeps, studies, ablations) are built on it.

- ``combine(parts)`` builds a population of members taken from others, each going on where
  it was: the training service co-batches visitors' runs with it (``minidl.engine.cohort``).

Shapes: ``X : (N, 2)`` points, ``y : (N,)`` labels, shared; a member's rows index them.
A population of regression members (setting ``problem``) has float targets ``y : (N,)`` in
[−1, 1], networks with one output trained towards ``y`` itself, and no accuracy (NaN).

Why this module is long: the loop, its checkpoints (``state``) and ``combine`` each touch
every part of a population's state — weights, optimizers, generators, the epoch in
progress — and must agree on all of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from itertools import accumulate, groupby
from typing import Any

import torch

from .. import data, hparams, optim
from .layers import Linear, Loss, Network
from .member import INIT_CONVENTIONS, Member, diverged, shape_of

METRICS = ("train_loss", "train_acc", "eval_loss", "eval_acc")

def _runs(values: Sequence[str]) -> list[tuple[str, int, int]]:
    """``["sgd", "sgd", "adam"]`` → ``[("sgd", 0, 2), ("adam", 2, 3)]``: contiguous runs."""
    bounds = [0, *accumulate(len(list(group)) for _, group in groupby(values))]
    return [(values[a], a, b) for a, b in zip(bounds, bounds[1:])]


def _affine(pairs: list[tuple[float, float]]) -> tuple[Any, Any] | None:
    """Per-member ``(scale, shift)`` as what ``_apply`` takes: None for the identity, floats
    when the members agree, else ``(M, 1, 1)`` tensors."""
    if all(p == (1.0, 0.0) for p in pairs):
        return None
    if len(set(pairs)) == 1:
        return pairs[0]
    return (torch.tensor([p[0] for p in pairs]).view(-1, 1, 1),
            torch.tensor([p[1] for p in pairs]).view(-1, 1, 1))


def _apply(affine: tuple[Any, Any] | None, t: torch.Tensor) -> torch.Tensor:
    if affine is None:
        return t
    scale, shift = affine
    return torch.addcmul(shift, t, scale) if isinstance(scale, torch.Tensor) else t * scale + shift


class Population:
    """Members trained as one batched network; see the module docstring.

    ``measure_at``: the epochs at whose end members are measured (None: every epoch).
    Attributes: ``epoch`` (epochs done), ``diverged`` (``(M,)`` bool), ``network``,
    ``optimizers`` (``(optimizer, start, stop)`` per run of members with one optimizer),
    ``batch_size`` (may change between steps).
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, members: Sequence[Member],
                 sizes: list[int], features: tuple[str, ...] = data.DEFAULT_FEATURES,
                 measure_at: Collection[int] | None = None):
        members = list(members)
        if not members:
            raise ValueError("a population needs at least one member")
        if len({shape_of(m) for m in members}) > 1:
            raise ValueError("the members of a population must share their batch size, "
                             "shuffling and numbers of rows")
        features = hparams.check("features", features)
        if sizes[0] != len(features):
            raise ValueError(f"a network of sizes {sizes} cannot take {len(features)} features")
        problems = {m.get("problem") for m in members}
        if len(problems) > 1:
            raise ValueError("classification and regression members cannot share a population")
        regression = problems == {"regression"}
        if sizes[-1] != (1 if regression else 2):
            raise ValueError(f"a network of sizes {sizes} cannot solve {problems.pop()} (expected "
                             f"{'1 output' if regression else '2 outputs'})")
        network = Network(sizes, [m.get("activation") for m in members])
        generators = [torch.Generator().manual_seed(m.seed) for m in members]
        for i, (member, generator) in enumerate(zip(members, generators)):
            for linear in network.linears:
                linear.init_member(i, generator, member.get("init"), member.get("gain"),
                                   **{k: member.get(k) for k in INIT_CONVENTIONS})
        # what every member sees: its rows, encoded by its conventions (``data``)
        inputs = _affine([data.input_affine(m.get("inputs")) for m in members])
        # classification: one-hot rows (or ±1, the targets convention); regression: the value
        targets = None if regression else _affine([data.target_affine(m.get("targets"))
                                                   for m in members])
        T = y.float().unsqueeze(-1) if regression else data.one_hot(y)

        def encoded(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            points = X[rows]
            return (data.with_features(points, _apply(inputs, points), features),
                    _apply(targets, T[rows]), y[rows])
        self._assemble(members, list(sizes), features, network, generators,
                       encoded(torch.stack([m.train_rows for m in members])),
                       encoded(torch.stack([m.eval_rows for m in members])))
        self.measure_at = None if measure_at is None else frozenset(measure_at)

    def _assemble(self, members: list[Member], sizes: list[int], features: tuple[str, ...],
                  network: Network, generators: list[torch.Generator],
                  train: tuple[torch.Tensor, ...], eval: tuple[torch.Tensor, ...],
                  step_counts: Sequence[int] | None = None) -> None:
        """Set up a population of ``members`` from its network (weights in place), their
        generators and their encoded training and evaluation rows, between epochs.
        ``step_counts``: each member's optimizer step count, where an optimizer reads it
        (``Optimizer.counts_steps``): members share an optimizer only where theirs agree."""
        M = len(members)
        self.members, self.sizes, self.features = members, sizes, features
        self.regression = members[0].get("problem") == "regression"
        self.measure_at: frozenset[int] | None = None
        self.network, self.generators = network, generators
        params = network.param()
        # one member-major (M, P) buffer of weights, one of gradients (``optim.flatten_``) …
        self._weights = optim.flatten_([p for p, _ in params], M).view(M, -1)
        optim.flatten_([g for _, g in params], M)
        counts = list(step_counts or [0] * M)
        kinds = [(m.get("optimizer"), counts[i] if optim.OPTIMIZERS[m.get("optimizer")]
                  .counts_steps else 0) for i, m in enumerate(members)]
        self.optimizers: list[tuple[optim.Optimizer, int, int]] = []
        for (kind, count), start, stop in _runs(kinds):
            optimizer = self._optimizer(kind, start, stop)
            optimizer.step_count = count
            self.optimizers.append((optimizer, start, stop))
        self.loss = Loss([m.get("loss") for m in members])
        self.batch_size, self.shuffle = members[0].get("batch_size"), members[0].get("shuffle")
        self.train, self.eval = train, eval
        self.epoch = 0
        self.cursor = 0
        self.order: torch.Tensor | None = None  # the epoch in progress: (M, rows) positions
        self._epoch_data: tuple[torch.Tensor, torch.Tensor] | None = None
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] = []  # the rest of the epoch
        self.diverged = torch.zeros(M, dtype=torch.bool)

    @classmethod
    def combine(cls, parts: Sequence[tuple[Population, int]]) -> Population:
        """A population of members taken from others: member ``k`` of ``population`` for each
        ``(population, k)`` of ``parts``, in that order.  Each goes on exactly where it was
        (weights, optimizer state, generator, frozen or not, the epoch in progress), on its
        own data, with its own settings: what the shared trainer co-batches visitors' runs
        with, and splits them back with (``combine([(population, k)])``).

        The members must share the shape of their work (``shape_of``), network sizes and
        input features, and where they are in an epoch: every one between epochs, or every
        one at the same row of one.  The result's ``epoch`` is the largest of the parts'.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("a population needs at least one member")
        first = parts[0][0]
        places = {None if p.order is None else p.cursor for p, _ in parts}
        if (len({shape_of(p.members[k]) for p, k in parts}) > 1
                or any(p.sizes != first.sizes or p.features != first.features
                       or p.batch_size != first.batch_size for p, _ in parts)):
            raise ValueError("members of different shapes cannot share a population")
        if len(places) > 1:
            raise ValueError("members at different places of an epoch cannot share a population")
        if any(p.measure_at is not None for p, _ in parts):
            raise ValueError("a population measured at some epochs only cannot be combined")
        members = [p.members[k] for p, k in parts]
        network = Network(first.sizes, [m.get("activation") for m in members])
        for j, linear in enumerate(network.linears):
            linear.weight.copy_(torch.stack([p.network.linears[j].weight[k] for p, k in parts]))
            linear.bias.copy_(torch.stack([p.network.linears[j].bias[k] for p, k in parts]))
        generators = []
        for p, k in parts:
            generators.append(torch.Generator())
            generators[-1].set_state(p.generators[k].get_state())
        sources = [p._optimizer_of(k) for p, k in parts]
        combined = cls.__new__(cls)
        combined._assemble(members, list(first.sizes), first.features, network, generators,
                           *(tuple(torch.cat([getattr(p, name)[i][k:k + 1] for p, k in parts])
                                   for i in range(3)) for name in ("train", "eval")),
                           step_counts=[o.step_count for o, _ in sources])
        for optimizer, start, stop in combined.optimizers:
            mine = optimizer._state()
            theirs = [(o._state(), row) for o, row in sources[start:stop]]
            if not mine and any(buffers for buffers, _ in theirs):
                optimizer._allocate_state()  # SGD's momentum (zero: as if not yet needed)
                mine = optimizer._state()
            for b, buffer in enumerate(mine):
                for i, (buffers, row) in enumerate(theirs):
                    if buffers:
                        buffer[i].copy_(buffers[b][row])
        combined.epoch = max(p.epoch for p, _ in parts)
        frozen = torch.cat([p.diverged[k:k + 1] for p, k in parts])
        if frozen.any():
            combined.freeze(frozen)
        (place,) = places
        if place is not None:
            combined.order = torch.cat([p.order[k:k + 1] for p, k in parts])
            combined._gather()
            combined._split(place)
        return combined

    def _optimizer_of(self, k: int) -> tuple[optim.Optimizer, int]:
        """The optimizer that updates member ``k``, and ``k``'s row in its buffers."""
        for optimizer, start, stop in self.optimizers:
            if start <= k < stop:
                return optimizer, k - start
        raise IndexError(f"no member {k} in a population of {len(self)}")

    def _optimizer(self, kind: str, start: int, stop: int) -> optim.Optimizer:
        """One optimizer for members ``start:stop`` (views of their rows of the buffers); a
        value the members share is passed as a float, cheaper to apply."""
        hyper = {}
        for k in hparams.optimizer_keys(kind):
            values = [m.get(k) for m in self.members[start:stop]]
            hyper[k] = values[0] if len(set(values)) == 1 else values
        views = [(p[start:stop], g[start:stop]) for p, g in self.network.param()]
        return optim.make(kind, views, **hyper)

    def __len__(self) -> int:
        return len(self.members)

    @property
    def alive(self) -> bool:
        """Whether a member is left to train (not every one diverged)."""
        return not bool(self.diverged.all())

    # ------------------------------------------------------------ training

    def step(self, max_seconds: float = math.inf,
             clock: Callable[[], float] = time.perf_counter) -> dict | None:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one).

        Returns ``None`` while the epoch goes on (the next call continues it), and at its
        end the epoch's record: ``{"epoch", "metrics", "diverged"}`` — ``metrics`` maps
        ``METRICS`` to ``(M,)`` tensors (None if the epoch was not measured), ``diverged``
        is the ``(M,)`` mask of members that diverged in this epoch (now frozen).
        """
        if self.order is None:
            self._start_epoch()
        batches, network, gradient = self._batches, self.network, self.loss.gradient
        optimizers = [o for o, _, _ in self.optimizers]
        started = clock()
        with torch.inference_mode():  # ~15 % faster steps; entering it costs more than one
            while batches:
                x, t = batches.pop()
                network.backward(gradient(network.forward(x), t))
                for optimizer in optimizers:
                    optimizer.step()
                self.cursor += x.shape[-2]
                if clock() - started >= max_seconds and batches:
                    return None
            return self._end_epoch()

    def _start_epoch(self) -> None:
        """A fresh order of every member's training rows, drawn from its generator."""
        rows = self.train[0].shape[1]
        if self.shuffle:
            self.order = torch.stack([torch.randperm(rows, generator=g) for g in self.generators])
        else:
            self.order = torch.arange(rows).expand(len(self), rows)
        self._gather()

    def _gather(self) -> None:
        inputs, targets, _ = self.train
        self._epoch_data = (self._rows(torch.take_along_dim(inputs, self.order.unsqueeze(-1), 1)),
                            self._rows(torch.take_along_dim(targets, self.order.unsqueeze(-1), 1)))
        self._split(0)

    def _split(self, cursor: int) -> None:
        """Cut the epoch's rows from ``cursor`` on into minibatches (last first, to pop)."""
        X, T = self._epoch_data
        rest = X.shape[-2] - cursor
        self.cursor = cursor
        self._batches = list(zip(X.narrow(-2, cursor, rest).split(self.batch_size, -2),
                                 T.narrow(-2, cursor, rest).split(self.batch_size, -2)))[::-1]

    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        """``t : (M, rows, …)`` as the network takes it: without the member dimension for a
        population of one (``layers.Linear``'s 2-D path)."""
        return t[0] if len(self) == 1 else t

    def restart_epoch(self) -> None:
        """Forget the epoch in progress: the next ``step`` starts a fresh one (for a copy
        whose weights were updated from elsewhere)."""
        self.order, self._epoch_data, self._batches, self.cursor = None, None, [], 0

    def _end_epoch(self) -> dict:
        self.epoch += 1
        self.order, self._epoch_data, self._batches, self.cursor = None, None, [], 0
        newly = ~torch.isfinite(self._weights).all(dim=1)
        metrics = None
        if self.measure_at is None or self.epoch in self.measure_at:
            metrics = self.measure()
            newly |= diverged(metrics["train_loss"]) | ~torch.isfinite(metrics["eval_loss"])
        newly &= ~self.diverged
        if newly.any():
            self.freeze(newly)
        return {"epoch": self.epoch, "metrics": metrics, "diverged": newly}

    def freeze(self, members: torch.Tensor) -> None:
        """Stop training the members of the ``(M,)`` mask: weights and optimizer state zeroed,
        learning rate 0 (``Optimizer.freeze_members``)."""
        self.diverged |= members
        for optimizer, start, stop in self.optimizers:
            local = members[start:stop]
            if local.any():
                optimizer.freeze_members(local)

    # ------------------------------------------------------------ reading

    def outputs(self, X: torch.Tensor, rows: int = 2500) -> torch.Tensor:
        """Every member's network outputs for points ``X : (N, 2)`` of the unit square, each
        encoded by its own conventions — one batched forward pass for all members (in
        slices of ``rows`` points, to bound the memory): ``(M, N, outputs)``.  Call it
        between ``step`` calls (a forward pass overwrites what backward would read)."""
        return self._forward(X, rows, every_layer=False)[0]

    def layer_values(self, X: torch.Tensor, rows: int = 2500) -> list[torch.Tensor]:
        """``outputs``, with what comes before them: every member's inputs (its encoding of
        ``X``) and each hidden layer's output after its activation, then the network's
        outputs — ``(M, N, units)`` each, from the same one batched forward pass."""
        return self._forward(X, rows, every_layer=True)

    def _forward(self, X: torch.Tensor, rows: int, every_layer: bool) -> list[torch.Tensor]:
        # only what is asked for is kept: every layer of a class's boundary grid is ~80 MB
        affine = _affine([data.input_affine(m.get("inputs")) for m in self.members])
        last = self.network.layers[-1]
        parts = []
        with torch.inference_mode():
            for chunk in X.split(rows):
                points = chunk.expand(len(self), *chunk.shape)
                x = self._rows(data.with_features(points, _apply(affine, points),
                                                  self.features))
                values = [x] if every_layer else []
                for layer in self.network.layers:
                    x = layer.forward(x)
                    if layer is last or (every_layer and not isinstance(layer, Linear)):
                        values.append(x)
                parts.append([v.reshape(len(self), len(chunk), -1) for v in values])
        return [torch.cat(columns, dim=1) for columns in zip(*parts)]

    def measure(self, network: Network | None = None) -> dict[str, torch.Tensor]:
        """Every member's loss (the mean squared error against its targets, whatever its
        reduction, so that runs compare on one scale) and accuracy on its training and its
        evaluation rows: ``METRICS`` → ``(M,)`` tensors.  ``network``: a copy to measure
        instead (the same shape); diverged members read NaN.  Regression has no accuracy:
        NaN (its loss is the mean of (prediction − target)² over the rows)."""
        network = network or self.network
        out = {}
        with torch.inference_mode():
            for name, (X, T, y) in (("train", self.train), ("eval", self.eval)):
                pred = network.forward(self._rows(X)).view(T.shape)
                out[f"{name}_loss"] = (pred - T).square().mean(dim=(-2, -1))
                out[f"{name}_acc"] = (torch.full_like(out[f"{name}_loss"], math.nan)
                                      if self.regression else
                                      (pred.argmax(-1) == y).to(pred.dtype).mean(-1))
        return out

    def set_settings(self, changes: Mapping[str, Any]) -> None:
        """Change settings of every member between steps: the optimizer (a fresh state on the
        same weights), its hyperparameters, the batch size.  Values are checked first, so a
        bad one changes nothing; a frozen member stays frozen."""
        changes = hparams.check_all(dict(changes))
        unknown = set(changes) - {"optimizer", "batch_size", *hparams.names(part="optimizer")}
        if unknown:
            raise ValueError(f"{', '.join(sorted(unknown))} cannot change in a population")
        kind = changes.get("optimizer")
        self.members = [Member({**m.settings, **changes}, m.train_rows, m.eval_rows, m.seed)
                        for m in self.members]
        if kind is not None and any(o.name != kind for o, _, _ in self.optimizers):
            self.optimizers = [(self._optimizer(kind, 0, len(self)), 0, len(self))]
        else:
            for optimizer, _, _ in self.optimizers:
                values = {k: v for k, v in changes.items() if k in optimizer.keys}
                if values:
                    optimizer.set_hyperparameters(**values)
        if self.diverged.any():  # a new learning rate would wake them
            self.freeze(self.diverged.clone())
        if "batch_size" in changes:
            self.batch_size = changes["batch_size"]
            if self.order is not None:  # the rest of the epoch in batches of the new size
                self._split(self.cursor)

    # ------------------------------------------------------------ checkpoints

    def state(self) -> dict:
        """A copy of what training has changed (plain values and tensors, for
        ``torch.save(weights_only=True)``): weights, optimizer state, each member's
        generator, the diverged mask, the epoch and the epoch in progress."""
        return {"epoch": self.epoch, "cursor": self.cursor,
                "order": None if self.order is None else self.order.clone(),
                "optimizers": [o.state() for o, _, _ in self.optimizers],
                "generators": [g.get_state() for g in self.generators],
                "diverged": self.diverged.clone()}

    def load_state(self, state: Mapping) -> None:
        """Go on from ``state()`` of a population of the same members (``ValueError`` for
        another's)."""
        if len(state["optimizers"]) != len(self.optimizers) or len(
                state["generators"]) != len(self):
            raise ValueError("this state is of another population")
        for (optimizer, _, _), saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state(saved)
        for generator, saved in zip(self.generators, state["generators"]):
            generator.set_state(saved)
        self.diverged = torch.zeros(len(self), dtype=torch.bool)
        self.freeze(state["diverged"].clone())  # a frozen member's learning rate is 0 again
        self.epoch = int(state["epoch"])
        if state["order"] is None:
            self.restart_epoch()
        else:
            self.order = state["order"].clone()
            self._gather()
            self._split(int(state["cursor"]))
