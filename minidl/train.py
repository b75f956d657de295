"""Training: a plain config in, a per-epoch history out.

``Config`` holds every setting as a plain value (so a UI, a URL or a CLI can
build it); ``Run`` owns the data, model, optimizer and history of one training
run and advances it an epoch at a time, which is what the live app needs;
``train(config)`` runs it to the end.

Minibatch SGD: each epoch draws a fresh permutation of the training rows from
the run's seeded generator (the same one that initialised the weights), cuts it
into batches of ``batch_size`` (the last may be smaller) and takes one
optimizer step per batch.  ``train_epoch`` and ``evaluate`` are written over the
last two dimensions, so the same code trains a population of models
(``(members, rows, features)`` tensors, see ``minidl.cv``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import pandas as pd
import torch

from . import data, nn, optim

Callback = Callable[[int, dict], "bool | None"]


@dataclass
class Config:
    """Every setting of one run.  Defaults: the seed report's network (SGD + Tanh)."""

    dataset: str = "disk"
    n_train: int = 1000
    n_test: int = 1000
    noise: float = 0.0
    data_seed: int = 0
    hidden: tuple[int, ...] = (25, 25, 25)
    activation: str = "tanh"
    init: str = "xavier"
    gain: float = 1.0
    init_seed: int = 0
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    rho: float = 0.99
    batch_size: int = 1
    epochs: int = 200
    shuffle: bool = True

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for name in ("n_train", "n_test", "batch_size", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        choices = {"dataset": data.DATASETS, "activation": nn.ACTIVATIONS,
                   "init": nn.INIT_METHODS, "optimizer": optim.OPTIMIZERS}
        for name, allowed in choices.items():
            v = getattr(self, name)
            if v not in allowed:
                raise ValueError(f"unknown {name} {v!r}; expected one of {tuple(allowed)}")
        if not all(isinstance(w, int) and w >= 1 for w in self.hidden):
            raise ValueError(f"hidden layer widths must be positive integers, got {self.hidden!r}")
        for name in ("data_seed", "init_seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if not (isinstance(self.noise, (int, float)) and 0.0 <= self.noise <= 0.5):
            raise ValueError(f"label noise must be a fraction in [0, 0.5], got {self.noise!r}")
        if not (isinstance(self.gain, (int, float)) and math.isfinite(self.gain)
                and self.gain > 0):
            raise ValueError(f"init gain must be a positive finite number, got {self.gain!r}")
        # the optimizer classes validate their hyperparameters; check all of them, so that
        # a bad value waiting for another optimizer is caught now, not after a switch
        for name in optim.OPTIMIZERS:
            optim.make(name, [(torch.zeros(1), torch.zeros(1))], **self.optimizer_kwargs())

    def optimizer_kwargs(self) -> dict:
        return {k: getattr(self, k) for k in ("lr", "momentum", "beta1", "beta2", "eps", "rho")}

    def sizes(self) -> list[int]:
        return [2, *self.hidden, 2]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


# Config fields that define the data, the network or its initial weights: changing
# one needs a fresh Run; every other field can change during a run.
RESET_FIELDS = ("dataset", "n_train", "n_test", "noise", "data_seed", "hidden", "activation",
                "init", "gain", "init_seed")


def build_model(config: Config, generator: torch.Generator) -> nn.Sequential:
    model = nn.mlp(config.sizes(), config.activation)
    model.init_params(config.init, config.gain, generator)
    return model


def train_step(model: nn.Module, loss: nn.LossMSE, optimizer: optim.Optimizer,
               x: torch.Tensor, target: torch.Tensor) -> None:
    """One minibatch: forward, loss, backward, update."""
    loss.forward(model.forward(x), target)
    optimizer.zero_grad()
    model.backward(loss.backward())
    optimizer.step()


def train_epoch(model: nn.Module, loss: nn.LossMSE, optimizer: optim.Optimizer,
                X: torch.Tensor, T: torch.Tensor, batch_size: int) -> None:
    """One pass over ``X`` / one-hot ``T`` *already in epoch order*, one step per batch.

    ``X : (..., rows, 2)``, ``T : (..., rows, classes)``: a leading member
    dimension, if present, is carried through untouched.
    """
    for start in range(0, X.shape[-2], batch_size):
        stop = start + batch_size
        train_step(model, loss, optimizer, X[..., start:stop, :], T[..., start:stop, :])


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, accuracy)`` on ``X : (..., rows, 2)``, ``y : (..., rows)``, reduced over rows."""
    out = model.forward(X)
    target = data.one_hot(y, out.shape[-1], out.dtype)
    loss = (out - target).square().mean(dim=(-2, -1))
    accuracy = (out.argmax(-1) == y).to(out.dtype).mean(-1)
    return loss, accuracy


@dataclass
class Run:
    """One training run that advances an epoch at a time.

    Attributes: ``model``, ``optimizer``, ``epoch`` (epochs done), ``history``
    (one dict of metrics per epoch), ``diverged`` (loss became NaN/inf).
    """

    config: Config
    history: list[dict] = field(default_factory=list)
    # (X_train, y_train, X_test, y_test) already drawn for this config (e.g. cached by
    # the app); None draws them with ``data.train_test``
    data_sets: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        c = self.config
        c.validate()
        self.X_train, self.y_train, self.X_test, self.y_test = self.data_sets or data.train_test(
            c.dataset, c.n_train, c.n_test, c.data_seed, c.noise)
        self.data_sets = None  # the attributes above hold them
        self.T_train = data.one_hot(self.y_train)
        self.generator = torch.Generator().manual_seed(c.init_seed)
        self.model = build_model(c, self.generator)
        self.loss = nn.LossMSE()
        self.optimizer = optim.make(c.optimizer, self.model.param(), **c.optimizer_kwargs())
        self.epoch = 0
        self.diverged = False
        self._epoch_rows: tuple[torch.Tensor, torch.Tensor] | None = None  # epoch in progress
        self._cursor = 0

    def set_hyperparameters(self, **values: float) -> None:
        """Change lr / momentum / betas / eps / rho mid-run, keeping weights and state.

        Switching ``optimizer`` starts a fresh optimizer state on the same weights.
        """
        needs_new_run = sorted(set(values) & set(RESET_FIELDS))
        if needs_new_run:
            raise ValueError(f"{', '.join(needs_new_run)} cannot change during a run; "
                             "start a new Run")
        new = Config(**{**self.config.to_dict(), **values})
        if new.optimizer != self.config.optimizer:
            self.optimizer = optim.make(new.optimizer, self.model.param(),
                                        **new.optimizer_kwargs())
        else:
            hypers = new.optimizer_kwargs()
            if new.optimizer == "adam":
                names = ("lr", "beta1", "beta2", "eps")
            elif new.optimizer == "rmsprop":
                names = ("lr", "rho", "eps")
            else:
                names = ("lr", "momentum")
            self.optimizer.set_hyperparameters(**{k: hypers[k] for k in names})
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
            self._epoch_rows, self._cursor = (self.X_train[order], self.T_train[order]), 0
        X, T = self._epoch_rows
        started = clock()
        while self._cursor < len(X):
            stop = self._cursor + self.config.batch_size
            train_step(self.model, self.loss, self.optimizer, X[self._cursor:stop],
                       T[self._cursor:stop])
            self._cursor = stop
            if clock() - started >= max_seconds and self._cursor < len(X):
                return None
        self._epoch_rows = None
        self.epoch += 1
        metrics = self.metrics()
        self.diverged = not all(math.isfinite(v) for v in metrics.values())
        metrics["diverged"] = self.diverged
        self.history.append(metrics)
        return metrics

    def train_epoch(self) -> dict:
        """Train to the end of the current epoch and return its metrics."""
        return self.train_steps()

    def metrics(self) -> dict:
        train_loss, train_acc = evaluate(self.model, self.X_train, self.y_train)
        test_loss, test_acc = evaluate(self.model, self.X_test, self.y_test)
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
