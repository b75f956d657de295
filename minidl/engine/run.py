"""One training run: a ``Config`` in, a per-epoch history out — a population of one.

``Run`` owns the data, the population (``minidl.engine.population``) that trains
its one network, and its history, and advances an epoch at a time (or a slice
of one), which is what the live app needs; ``train(config)`` runs it to the end.

Minibatch SGD: each epoch draws a fresh permutation of the training rows from
the run's generator seeded with ``init_seed`` (the one that drew the initial
weights), cuts it into batches of ``batch_size`` (the last may be smaller) and
takes one optimizer step per batch — the population's loop, so a run trains
exactly as the same settings do in a race or a sweep.

``model`` is the network as plain ``minidl.nn`` modules whose weights are the
population's: what the page draws, exports and measures layer health on.

``snapshots`` keeps the weights at the end of every epoch (thinned evenly within a few
MB, ``minidl.engine.snapshots``), and ``at(epoch)`` is the run as it was then: a replay.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import torch

from .. import data, health, nn
from ..config import RESET_FIELDS, Config
from .member import Member
from .population import Population
from .snapshots import Snapshots

Callback = Callable[[int, dict], "bool | None"]
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "diverged"]


def member_of(config: Config, n_train: int, n_test: int) -> Member:
    """The population member that trains ``config`` on rows ``0 … n_train − 1`` of its data
    and is evaluated on the ``n_test`` after them."""
    return Member(config.to_dict(), torch.arange(n_train),
                  torch.arange(n_train, n_train + n_test), config.init_seed)


def metrics(population: Population, epoch: int, k: int = 0,
            measured: dict[str, torch.Tensor] | None = None) -> dict:
    """Member ``k``'s metrics as a run's history has them (the evaluation rows are its test
    set): ``{"epoch", "train_loss", "train_acc", "test_loss", "test_acc"}``."""
    m = population.measure() if measured is None else measured
    return {"epoch": epoch, "train_loss": float(m["train_loss"][k]),
            "train_acc": float(m["train_acc"][k]), "test_loss": float(m["eval_loss"][k]),
            "test_acc": float(m["eval_acc"][k])}


@dataclass
class Run:
    """One training run that advances an epoch at a time.

    Attributes: ``model`` (plain ``nn`` modules on the population's weights),
    ``population``, ``epoch`` (epochs done), ``history`` (one dict of metrics per epoch),
    ``diverged`` (the loss became NaN/inf or passed ``DIVERGED_LOSS``), ``health`` (with
    ``track_health``: one dict per layer per recorded epoch, ``epoch`` plus
    ``minidl.health.statistics``).  A record costs one forward and backward pass over the
    training set — next to nothing at batch 1, as much as the epoch itself at full batch —
    so epochs go unrecorded while the records have taken over ``health_share`` of the
    training time (the first and the last epoch always are).  ``snapshots``: the weights
    at the ends of epochs, for ``at``.
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
            data.train_test(c.dataset, c.n_train, c.n_test, c.data_seed, c.noise, c.jitter))
        self.data_sets = None  # the attributes above hold them
        n_train, n_test = len(self.y_train), len(self.y_test)
        self.population = Population(torch.cat([self.X_train, self.X_test]),
                                     torch.cat([self.y_train, self.y_test]),
                                     [member_of(c, n_train, n_test)], c.sizes(), c.features)
        # what the network sees and is trained towards (the conventions of ``hparams``)
        (self.inputs_train,), (self.T_train,), _ = self.population.train
        (self.inputs_test,), (self.T_test,), _ = self.population.eval
        self.member = 0  # this run's member of ``population`` (see ``bind``)
        self.model = self.population.network.member(0, c.activation)
        self.loss = nn.LossMSE(reduction=c.loss)  # for layer health's full-set gradient
        self.epoch = 0          # epochs done (an imported run's count goes on from its file's)
        self.diverged = False
        self._epoch_start: list[torch.Tensor] | None = None  # parameters as the epoch began
        self._seconds = {"train": 0.0, "health": 0.0}  # what health_share compares
        self.snapshots = Snapshots()

    # ------------------------------------------------------------ the population's state

    def bind(self, population: Population, member: int) -> None:
        """Train from now on as member ``member`` of ``population``, which goes on from where
        this run is (``Population.combine``): the shared trainer co-batches runs this way
        (``minidl.engine.cohort``).  ``model`` becomes a view of that member's weights."""
        self.population, self.member = population, member
        self.model = population.network.member(member, self.config.activation)

    @property
    def optimizer(self):
        return self.population._optimizer_of(self.member)[0]

    @property
    def budget(self) -> int:
        """The epoch budget (``config.epochs``): where training stops."""
        return self.config.epochs

    def restart_epoch(self) -> None:
        """Forget the epoch in progress: the next ``train_steps`` starts a fresh one (for a
        copy whose weights were updated from elsewhere, ``ui.background``)."""
        self.population.restart_epoch()

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
        self.population.set_settings({k: v for k, v in values.items() if k != "epochs"})
        self.config = new

    # ------------------------------------------------------------ training

    def train_steps(self, max_seconds: float = math.inf,
                    clock: Callable[[], float] = time.perf_counter) -> dict | None:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one).

        Returns the epoch's metrics (also appended to ``history``) if the epoch
        ended, else ``None``: the next call goes on where this one stopped, so a
        live view can redraw in the middle of a long epoch.
        """
        self.begin_steps()
        wall = time.perf_counter()
        record = self.population.step(max_seconds, clock)
        self.count_training(time.perf_counter() - wall)
        return None if record is None else self.end_epoch(record)

    def begin_steps(self) -> None:
        """What comes before training steps of this run's population (``train_steps``, or a
        cohort's): at an epoch's start, the weights that layer health compares with."""
        if self.diverged:
            raise RuntimeError("this run diverged; start a new one")
        if self.population.order is None and self.track_health:
            self._epoch_start = health.snapshot(self.model)

    def count_training(self, seconds: float) -> None:
        """``seconds`` of training were this run's (what ``health_share`` compares with)."""
        self._seconds["train"] += seconds

    def end_epoch(self, record: dict) -> dict:
        """Take in the population's ``record`` of an epoch that ended (``Population.step``):
        count it, record health and a snapshot, append the metrics to ``history`` and return
        them."""
        self.epoch += 1
        self.diverged = bool(record["diverged"][self.member])
        if self.track_health:
            self._record_health()
        self.snapshots.record(self.epoch, self.model)
        row = metrics(self.population, self.epoch, self.member, measured=record["metrics"])
        row["diverged"] = self.diverged
        self.history.append(row)
        return row

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

    def fit(self, callback: Callback | None = None, epochs: int | None = None) -> Run:
        """Train up to ``epochs`` (default: the config's) more epochs.

        ``callback(epoch, metrics)`` is called after every epoch; returning
        ``False`` stops the run.  A diverged run stops without raising.
        """
        for _ in range(self.config.epochs if epochs is None else epochs):
            metrics_now = self.train_epoch()
            if callback is not None and callback(self.epoch, metrics_now) is False:
                break
            if self.diverged:
                break
        return self

    # ------------------------------------------------------------ reading

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """The network's outputs for points ``X : (rows, 2)`` of the unit square."""
        return self.model.forward(data.encode_inputs(X, self.config.inputs,
                                                     self.config.features))

    def at(self, epoch: int) -> Run:
        """The run as it was at the end of ``epoch`` (one of ``snapshots.epochs``), to read
        and draw: a copy whose model holds that epoch's weights and whose history and health
        end there.  It shares the data with this run, which it never changes; it has no
        population (``population`` is None), so it cannot train."""
        if epoch not in self.snapshots:
            raise ValueError(f"epoch {epoch} is not kept for replay (kept: "
                             f"{', '.join(map(str, self.snapshots.epochs)) or 'none'})")
        then = copy.copy(self)
        then.population = None
        then.model = self.snapshots.load(epoch, copy.deepcopy(self.model))
        then.history = [h for h in self.history if h["epoch"] <= epoch]
        then.health = [h for h in self.health if h["epoch"] <= epoch]
        then.epoch = epoch
        then.diverged = bool(then.history and then.history[-1]["diverged"])
        return then

    def mean_guess_loss(self) -> float:
        """A regression's yardstick: the test loss of always guessing the mean training
        target, ``mean((t_test − mean(t_train))²)`` (the best constant on the training set)."""
        return float((self.y_test.float() - self.y_train.float().mean()).square().mean())

    def metrics(self) -> dict:
        """The metrics of the weights as they are now (``epoch`` and the four numbers)."""
        return metrics(self.population, self.epoch, self.member)

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history, columns=HISTORY_COLUMNS)


def train(config: Config, callback: Callback | None = None) -> Run:
    """Train a fresh run of ``config`` for ``config.epochs`` epochs and return it."""
    return Run(config).fit(callback)
