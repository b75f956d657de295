"""Training: a plain config in, a per-epoch history out.

``Config`` holds every setting as a plain value (so a UI, a URL or a CLI can
build it); ``Run`` owns the data, model, optimizer and history of one training
run and advances it an epoch at a time, which is what the live app needs;
``train(config)`` runs it to the end.

Minibatch SGD: each epoch draws a fresh permutation of the training rows from
the run's seeded generator (the same one that initialised the weights), cuts it
into batches of ``batch_size`` (the last may be smaller) and takes one
optimizer step per batch.  ``train_minibatches`` and ``evaluate`` are written over the
last two dimensions, so the same code trains a population of models
(``(members, rows, features)`` tensors, see ``minidl.cv``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, make_dataclass

import pandas as pd
import torch

from . import data, health, hparams, nn, optim

Callback = Callable[[int, dict], "bool | None"]


class _Settings:
    """Methods of ``Config``; its fields come from the settings table (see ``Config``)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field with the settings table (``ValueError`` naming the first bad
        one) and bring each to its type (a list of widths becomes a tuple, 20.0 becomes 20)."""
        for name in hparams.names("config"):
            setattr(self, name, hparams.check(name, getattr(self, name)))

    def optimizer_kwargs(self) -> dict:
        """The hyperparameters the chosen optimizer reads (``hparams.optimizer_keys``)."""
        return {k: getattr(self, k) for k in hparams.optimizer_keys(self.optimizer)}

    def sizes(self) -> list[int]:
        return [len(self.features), *self.hidden, 2]

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> Config:
        """A checked copy with ``changes``."""
        return Config(**{**self.to_dict(), **changes})

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


_TYPES = {"float": float, "int": int, "choice": str, "bool": bool, "widths": tuple[int, ...],
          "set": tuple[str, ...]}
# Every setting of one run: one field per settings-table row that appears in "config",
# with the table's default (the seed report's network, SGD + Tanh) and its check.
Config = make_dataclass(
    "Config", [(name, _TYPES[s.kind], field(default=s.default))
               for name, s in hparams.TABLE.items() if "config" in s.where],
    bases=(_Settings,), namespace={"__module__": __name__})
Config.__doc__ = ("Every setting of one run, one field per row of the settings table "
                  "(``minidl.hparams``) used in ``config``; checked on construction.")


# Config fields that define the data, the network or its initial weights: changing
# one needs a fresh Run; every other field can change during a run.
RESET_FIELDS = tuple(n for n in hparams.names("config") if hparams.TABLE[n].fresh_run)


# A run whose training loss (mean squared error against targets in [−1, 1]) is non-finite or
# above this has diverged: a network that learns keeps it below ~1, and one that explodes
# passes 1e24 on its way to inf — showing such a number as a loss helps nobody.
DIVERGED_LOSS = 1e6


def diverged(loss: torch.Tensor | float) -> torch.Tensor | bool:
    """Whether a training loss (a float, or one per member) says the run diverged."""
    if isinstance(loss, torch.Tensor):
        return ~torch.isfinite(loss) | (loss.abs() > DIVERGED_LOSS)
    return not math.isfinite(loss) or abs(loss) > DIVERGED_LOSS


# the init conventions the report leaves open (``init_scale``, ``init_dist``, ``init_bias``)
INIT_CONVENTIONS = tuple(n for n in hparams.names(part="init") if hparams.TABLE[n].convention)


def build_model(config: Config, generator: torch.Generator) -> nn.Sequential:
    model = nn.mlp(config.sizes(), config.activation)
    model.init_params(config.init, config.gain, generator,
                      **{k: getattr(config, k) for k in INIT_CONVENTIONS})
    return model


def train_step(model: nn.Sequential, loss: nn.LossMSE, optimizer: optim.Optimizer,
               x: torch.Tensor, target: torch.Tensor) -> None:
    """One minibatch: forward, loss gradient, backward, update.

    The backward pass overwrites the gradients (no ``zero_grad``) and skips the
    gradient for the data.  Callers run steps under ``torch.inference_mode()``
    (about 15 % faster here); entering it costs more than a step, so not per step.
    """
    model.backward(loss.gradient(model.forward(x), target), accumulate=False, input_grad=False)
    optimizer.step()


@torch.inference_mode()
def train_minibatches(model: nn.Sequential, loss: nn.LossMSE, optimizer: optim.Optimizer,
                      X: torch.Tensor, T: torch.Tensor, batch_size: int) -> None:
    """One pass over ``X`` / one-hot ``T`` *already in epoch order*, one step per batch.

    ``X : (..., rows, 2)``, ``T : (..., rows, classes)``: a leading member
    dimension, if present, is carried through untouched.
    """
    for x, t in zip(X.split(batch_size, dim=-2), T.split(batch_size, dim=-2)):
        train_step(model, loss, optimizer, x, t)


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, T: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, accuracy)`` on ``X : (..., rows, 2)``, ``y : (..., rows)``, reduced over rows.

    The loss is the mean squared error against the targets ``T`` (default: one-hot
    ``y``), whatever reduction training uses, so runs compare on one scale.
    """
    out = model.forward(X)
    target = data.one_hot(y, out.shape[-1], out.dtype) if T is None else T
    loss = (out - target).square().mean(dim=(-2, -1))
    accuracy = (out.argmax(-1) == y).to(out.dtype).mean(-1)
    return loss, accuracy


@dataclass
class Run:
    """One training run that advances an epoch at a time.

    Attributes: ``model``, ``optimizer``, ``epoch`` (epochs done), ``history``
    (one dict of metrics per epoch), ``diverged`` (the loss became NaN/inf or passed
    ``DIVERGED_LOSS``), ``health`` (with ``track_health``: one dict per layer per recorded
    epoch, ``epoch`` plus ``minidl.health.statistics``).  A record costs one forward and
    backward pass over the training set — next to nothing at batch 1, as much as the epoch
    itself at full batch — so epochs go unrecorded while the records have taken over
    ``health_share`` of the training time (the first and the last epoch always are).
    """

    config: Config
    history: list[dict] = field(default_factory=list)
    # (X_train, y_train, X_test, y_test) already drawn for this config (e.g. cached by
    # the app); None draws them with ``data.train_test`` (or ``data.split_points``)
    data_sets: tuple | None = field(default=None, repr=False)
    track_health: bool = True
    health_share: float = 0.1
    health: list[dict] = field(default_factory=list, repr=False)
    # dataset "custom": your own points ``(X, y)`` (``data.read_points_csv``), split into
    # training and test points by the config's ``split`` share and ``data_seed``
    points: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        c = self.config
        c.validate()
        if c.dataset == "custom" and self.points is None and self.data_sets is None:
            raise ValueError("the data set 'custom' needs your points: Run(config, points=(X, y))")
        if c.dataset != "custom" and self.points is not None:
            raise ValueError(f"points were given, but the data set is {c.dataset!r} "
                             "(expected 'custom')")
        if self.points is not None:
            self.points = data.check_points(*self.points)
        self.X_train, self.y_train, self.X_test, self.y_test = self.data_sets or (
            data.split_points(*self.points, c.split, c.data_seed, c.noise)
            if self.points is not None else
            data.train_test(c.dataset, c.n_train, c.n_test, c.data_seed, c.noise))
        self.data_sets = None  # the attributes above hold them
        # what the network sees and is trained towards (the conventions of ``hparams``)
        self.inputs_train = data.encode_inputs(self.X_train, c.inputs, c.features)
        self.inputs_test = data.encode_inputs(self.X_test, c.inputs, c.features)
        self.T_train = data.encode_targets(self.y_train, c.targets)
        self.T_test = data.encode_targets(self.y_test, c.targets)
        self.generator = torch.Generator().manual_seed(c.init_seed)
        self.model = build_model(c, self.generator)
        self.loss = nn.LossMSE(reduction=c.loss)
        self.optimizer = optim.make(c.optimizer, self.model.param(), **c.optimizer_kwargs())
        self.epoch = 0
        self.diverged = False
        self._epoch_rows: tuple[torch.Tensor, torch.Tensor] | None = None  # epoch in progress
        self._cursor = 0
        self._epoch_start: list[torch.Tensor] | None = None  # parameters as the epoch began
        self._seconds = {"train": 0.0, "health": 0.0}  # what health_share compares

    @property
    def budget(self) -> int:
        """The epoch budget (``config.epochs``): where training stops."""
        return self.config.epochs

    def restart_epoch(self) -> None:
        """Forget the epoch in progress: the next ``train_steps`` starts a fresh one (for a
        copy whose weights were updated from elsewhere, ``ui.background``)."""
        self._epoch_rows = None

    def set_hyperparameters(self, **values) -> None:
        """Change any setting that needs no fresh run (optimizer, its hyperparameters, batch
        size, epoch budget) mid-run, keeping weights and optimizer state; values are checked
        first, so a bad one changes nothing.

        Switching ``optimizer`` starts a fresh optimizer state on the same weights.
        """
        needs_new_run = sorted(set(values) & set(RESET_FIELDS))
        if needs_new_run:
            raise ValueError(f"{', '.join(needs_new_run)} cannot change during a run; "
                             "start a new Run")
        new = self.config.replace(**values)
        if new.optimizer != self.config.optimizer:
            self.optimizer = optim.make(new.optimizer, self.model.param(), **new.to_dict())
        else:
            self.optimizer.set_hyperparameters(**new.optimizer_kwargs())
        self.config = new

    def train_steps(self, max_seconds: float = math.inf,
                    clock: Callable[[], float] = time.perf_counter) -> dict | None:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one).

        Returns the epoch's metrics (also appended to ``history``) if the epoch
        ended, else ``None``: the next call goes on where this one stopped, so a
        live view can redraw in the middle of a long epoch.
        """
        if self.diverged:
            raise RuntimeError("this run diverged; start a new one")
        if self._epoch_rows is None:  # a new epoch: a fresh order of the training rows
            n = self.X_train.shape[0]
            order = (torch.randperm(n, generator=self.generator) if self.config.shuffle
                     else torch.arange(n))
            self._epoch_rows, self._cursor = (self.inputs_train[order], self.T_train[order]), 0
            self._epoch_start = health.snapshot(self.model) if self.track_health else None
        X, T = self._epoch_rows
        started, wall = clock(), time.perf_counter()
        with torch.inference_mode():
            while self._cursor < len(X):
                stop = self._cursor + self.config.batch_size
                train_step(self.model, self.loss, self.optimizer, X[self._cursor:stop],
                           T[self._cursor:stop])
                self._cursor = stop
                if clock() - started >= max_seconds and self._cursor < len(X):
                    self._seconds["train"] += time.perf_counter() - wall
                    return None
        self._seconds["train"] += time.perf_counter() - wall
        self._epoch_rows = None
        self.epoch += 1
        if self.track_health:
            self._record_health()
        metrics = self.metrics()
        self.diverged = diverged(metrics["train_loss"]) or not all(
            math.isfinite(v) for v in metrics.values())
        metrics["diverged"] = self.diverged
        self.history.append(metrics)
        return metrics

    def _record_health(self) -> None:
        seconds = self._seconds
        if (self.epoch not in (1, self.config.epochs)
                and seconds["health"] > self.health_share * seconds["train"]):
            return
        wall = time.perf_counter()
        self.health.extend({"epoch": self.epoch, **row} for row in health.statistics(
            self.model, self.loss, self.inputs_train, self.T_train, self._epoch_start))
        seconds["health"] += time.perf_counter() - wall

    def train_epoch(self) -> dict:
        """Train to the end of the current epoch and return its metrics."""
        return self.train_steps()

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """The network's outputs for points ``X : (rows, 2)`` of the unit square."""
        return self.model.forward(data.encode_inputs(X, self.config.inputs,
                                                     self.config.features))

    def metrics(self) -> dict:
        train_loss, train_acc = evaluate(self.model, self.inputs_train, self.y_train, self.T_train)
        test_loss, test_acc = evaluate(self.model, self.inputs_test, self.y_test, self.T_test)
        return {"epoch": self.epoch, "train_loss": float(train_loss),
                "train_acc": float(train_acc), "test_loss": float(test_loss),
                "test_acc": float(test_acc)}

    def fit(self, callback: Callback | None = None, epochs: int | None = None) -> Run:
        """Train up to ``epochs`` (default: the config's) more epochs.

        ``callback(epoch, metrics)`` is called after every epoch; returning
        ``False`` stops the run.  A diverged run stops without raising.
        """
        for _ in range(self.config.epochs if epochs is None else epochs):
            metrics = self.train_epoch()
            if callback is not None and callback(self.epoch, metrics) is False:
                break
            if self.diverged:
                break
        return self

    def history_frame(self) -> pd.DataFrame:
        columns = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "diverged"]
        return pd.DataFrame(self.history, columns=columns)


def train(config: Config, callback: Callback | None = None) -> Run:
    """Train a fresh run of ``config`` for ``config.epochs`` epochs and return it."""
    return Run(config).fit(callback)
