"""A race: up to nine training runs (*contestants*) trained side by side, an epoch at a time.

Every contestant is a complete ``Config``; all share the data draw (data set, sizes,
noise, data seed) and the epoch budget, so differences come from their settings alone —
and, where architectures match, from one initialisation (one init seed draws the same
weights for each).  A contestant trains exactly as a ``Run`` of its config would: both are
members of the engine's populations (``minidl.engine.population``), whose weights and
minibatch orders come from a generator seeded with the init seed, so it follows the same
trajectory and "open in the Playground" reproduces it.

Speed: contestants whose networks and batches have one shape (hidden widths, input
features, batch size, shuffling) train as one population even when their activations,
optimizers and encodings differ; members are ordered so that each optimizer's sit side by
side.  Populations take turns within an epoch.  A contestant that diverges is frozen by its
population and reported as diverged; the others train on.

``train_steps(max_seconds)``, ``epoch``, ``budget``, ``diverged``, ``history``, ``model``
are the small protocol ``ui.background.Trainer`` drives (as it drives a ``Run``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import pandas as pd
import torch

from .. import data, hparams, nn
from ..config import Config
from ..engine.population import Population
from ..engine.run import member_of
from .contestants import check_contestants, details, labels

# what the members of one population share: the shape of their network and of their work
POPULATION_KEY = ("hidden", "features", "batch_size", "shuffle")
HISTORY_COLUMNS = ["contestant", "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                   "diverged"]


# ---------------------------------------------------------------- the race

def member_order(configs: Sequence[Config]) -> list[int]:
    """Indices of ``configs`` with each optimizer's members contiguous (one optimizer per
    run of members, ``population.Population``)."""
    return sorted(range(len(configs)), key=lambda i: (
        hparams.OPTIMIZERS.index(configs[i].optimizer), configs[i].activation, i))


class _Weights(nn.Module):
    """Every population's network, as one module: what ``ui.background`` sends between
    processes (``param()``) and copies for a frozen view (``copy.deepcopy``)."""

    def __init__(self, networks: list):
        self.modules = networks

    def param(self) -> list[nn.ParamGrad]:
        return [pg for m in self.modules for pg in m.param()]


class Race:
    """Contestants trained side by side; see the module docstring.

    Attributes: ``contestants`` (configs), ``names`` (``labels``), ``epoch`` (epochs the race
    has run), ``history`` (one dict per contestant per epoch it trained: ``HISTORY_COLUMNS``),
    ``diverged`` (every contestant has: nothing is left to train), ``health`` (always empty:
    a race keeps no layer statistics), ``populations`` (``population.Population``) and
    ``groups`` (each population's contestants, in its member order).
    """

    def __init__(self, contestants: Sequence[Config], data_sets: tuple | None = None):
        self.contestants = check_contestants(contestants)
        self.names = labels(self.contestants)
        c = self.contestants[0]
        self.X_train, self.y_train, self.X_test, self.y_test = data_sets or data.train_test(
            c.dataset, c.n_train, c.n_test, c.data_seed, c.noise, c.jitter)
        self.budget = c.epochs
        self.epoch = 0
        self.history: list[dict] = []
        self.health: list[dict] = []
        self.diverged = False  # every contestant has diverged
        X, y = torch.cat([self.X_train, self.X_test]), torch.cat([self.y_train, self.y_test])
        n_train, n_test = len(self.y_train), len(self.y_test)
        keyed: dict[tuple, list[int]] = {}
        for i, config in enumerate(self.contestants):
            keyed.setdefault(tuple(getattr(config, k) for k in POPULATION_KEY), []).append(i)
        self.groups = [[members[i] for i in member_order([self.contestants[j] for j in members])]
                       for members in keyed.values()]
        self.populations = [
            Population(X, y, [member_of(self.contestants[i], n_train, n_test) for i in group],
                       self.contestants[group[0]].sizes(), self.contestants[group[0]].features)
            for group in self.groups]
        self.model = _Weights([p.network for p in self.populations])
        self._where = {i: (index, k) for index, group in enumerate(self.groups)
                       for k, i in enumerate(group)}
        self._ended: dict[int, dict] = {}  # this epoch's record of each population that ended it

    # -------------------------------------------------------- training

    def train_steps(self, max_seconds: float = math.inf,
                    clock: Callable[[], float] = time.perf_counter) -> list[dict] | None:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one),
        population after population.  Returns the epoch's history rows if the epoch ended,
        else ``None`` (the next call goes on where this one stopped)."""
        if self.diverged:
            raise RuntimeError("every contestant diverged; start a new race")
        started = clock()
        for k, population in enumerate(self.populations):
            if not population.alive or k in self._ended:
                continue
            record = population.step(max(0.0, max_seconds - (clock() - started)), clock)
            if record is not None:
                self._ended[k] = record
            if clock() - started >= max_seconds and not self._epoch_finished():
                return None
        return self._end_epoch()

    def _epoch_finished(self) -> bool:
        return all(k in self._ended or not p.alive for k, p in enumerate(self.populations))

    def train_epoch(self) -> list[dict]:
        return self.train_steps()

    def _end_epoch(self) -> list[dict]:
        self.epoch += 1
        rows = []
        for k, record in sorted(self._ended.items()):
            values = {key: v.tolist() for key, v in record["metrics"].items()}
            newly = record["diverged"]
            was_out = self.populations[k].diverged & ~newly
            for j, i in enumerate(self.groups[k]):
                if was_out[j]:
                    continue
                rows.append({"contestant": i, "epoch": self.epoch,
                             "train_loss": values["train_loss"][j],
                             "train_acc": values["train_acc"][j],
                             "test_loss": values["eval_loss"][j],
                             "test_acc": values["eval_acc"][j], "diverged": bool(newly[j])})
        self._ended = {}
        rows.sort(key=lambda r: r["contestant"])
        self.history += rows
        self.diverged = not any(p.alive for p in self.populations)
        return rows

    def fit(self, epochs: int | None = None) -> Race:
        """Train up to ``epochs`` more epochs (default: to the budget), or until every
        contestant diverged."""
        for _ in range((self.budget - self.epoch) if epochs is None else epochs):
            if self.diverged or self.epoch >= self.budget:
                break
            self.train_epoch()
        return self

    def restart_epoch(self) -> None:
        """Forget the epoch in progress (``ui.background``: the weights came from elsewhere)."""
        for population in self.populations:
            population.restart_epoch()
        self._ended = {}

    def set_hyperparameters(self, **values) -> None:
        raise ValueError("a race's settings cannot change while it runs; start a new race")

    # -------------------------------------------------------- reading

    def predict(self, contestant: int, X: torch.Tensor) -> torch.Tensor:
        """Contestant ``contestant``'s outputs for points ``X : (rows, 2)``."""
        return self.predict_all(X)[contestant]

    def predict_all(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Every contestant's outputs for ``X``: one forward pass per population (of
        ``model``'s networks, so that a frozen copy draws its own weights)."""
        out: list[torch.Tensor | None] = [None] * len(self.contestants)
        for network, group in zip(self.model.modules, self.groups):
            inputs = torch.stack([data.encode_inputs(X, self.contestants[i].inputs,
                                                     self.contestants[i].features)
                                  for i in group])
            with torch.inference_mode():
                result = network.forward(inputs)
            for k, i in enumerate(group):
                out[i] = result[k]
        return out  # type: ignore[return-value]

    def out(self) -> set[int]:
        """The contestants that diverged (read from ``history``, which a copy keeps too)."""
        return {row["contestant"] for row in self.history if row["diverged"]}

    def history_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.history, columns=HISTORY_COLUMNS)
        frame.insert(1, "name", [self.names[i] for i in frame["contestant"]])
        return frame

    def contestant_history(self, contestant: int) -> list[dict]:
        """Contestant ``contestant``'s rows, as ``Run.history`` has them."""
        return [{k: v for k, v in row.items() if k != "contestant"}
                for row in self.history if row["contestant"] == contestant]


def first_reached(history: pd.DataFrame, target: float) -> dict[int, int | None]:
    """The first epoch at which each contestant's test accuracy reached ``target`` (None:
    not yet)."""
    hit = history[(history["test_acc"] >= target) & ~history["diverged"]]
    first = hit.groupby("contestant")["epoch"].min()
    return {int(i): int(e) for i, e in first.items()}


def standings(race: Race, target: float) -> pd.DataFrame:
    """The ranking: one row per contestant, best first — by test accuracy at its last epoch
    (diverged ones last), then by the epoch it reached ``target`` (earlier first), then by
    training loss."""
    history = race.history_frame()
    last = history.groupby("contestant").tail(1).set_index("contestant")
    reached = first_reached(history, target) if len(history) else {}
    rows, diverged, settings = [], race.out(), details(race.contestants)
    for i, name in enumerate(race.names):
        row = last.loc[i] if i in last.index else None
        out = i in diverged
        rows.append({"contestant": i, "name": name, "settings": settings[i],
                     "test_acc": math.nan if row is None or out else float(row["test_acc"]),
                     "train_loss": math.nan if row is None or out else float(row["train_loss"]),
                     "epoch": 0 if row is None else int(row["epoch"]),
                     "reached": reached.get(i), "diverged": out})
    table = pd.DataFrame(rows)
    table["_reached"] = table["reached"].fillna(math.inf).astype(float)
    table = table.sort_values(["diverged", "test_acc", "_reached", "train_loss"],
                              ascending=[True, False, True, True], na_position="last",
                              kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    return table.drop(columns="_reached").reset_index(drop=True)


def winner(race: Race, target: float) -> str:
    """The name of the first contestant in ``standings``."""
    return str(standings(race, target).iloc[0]["name"])

