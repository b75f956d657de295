"""A race: up to nine training runs (*contestants*) trained side by side, an epoch at a time.

Every contestant is a complete ``train.Config``; all share the data draw (data set, sizes,
noise, data seed) and the epoch budget, so differences come from their settings alone —
and, where architectures match, from one initialisation (one init seed draws the same
weights for each).  A contestant trains exactly as a ``train.Run`` of its config would:
its weights and its minibatch orders come from a generator seeded with its init seed
(weights first, then one permutation per epoch), so it follows the same trajectory and
"open in the Playground" reproduces it.

Speed: contestants that share the shape of their work (hidden widths, input features and
their encoding, targets, batch size, shuffling) train as one *population*
(``Linear(..., members=M)``) even when their activations and optimizers differ:
``nn.PerMember`` gives each member its own activation, and members are ordered so that
each optimizer's sit side by side — one optimizer per optimizer updates its contiguous row
slice (a view) of the population's member-major ``(M, P)`` buffer.  Populations take turns
within an epoch.

A contestant whose loss becomes NaN/inf or passes ``train.DIVERGED_LOSS`` is frozen (its
weights zeroed, its learning rate 0: nothing non-finite travels on) and reported as
diverged; the others train on.

``train_steps(max_seconds)``, ``epoch``, ``budget``, ``diverged``, ``history``, ``model``
are the small protocol ``ui.background.Trainer`` drives (as it drives a ``train.Run``).

Why this module is long: building the contestants (presets, hand-made lists and their
checks), the mixed population that trains them and the standings that read the result are
one idea — a race — and each part is short.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby

import pandas as pd
import torch

from . import data, hparams, nn, optim, reproduce
from .train import INIT_CONVENTIONS, Config, evaluate
from .train import diverged as has_diverged

MAX_CONTESTANTS = 9
# what every contestant shares: one data draw and one epoch budget
SHARED = ("dataset", "n_train", "n_test", "noise", "data_seed", "epochs")
# what the members of one population share: the shape of their work and their data's encoding
POPULATION_KEY = ("hidden", "features", "inputs", "targets", "batch_size", "shuffle")
PRESETS = hparams.TABLE["preset"].choices
HISTORY_COLUMNS = ["contestant", "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                   "diverged"]


# ---------------------------------------------------------------- contestants

def _pair_settings(changes: Mapping) -> dict:
    """``changes`` (a pair's chosen settings: Table I's, a sweep's) on top of the table's
    defaults for every optimizer setting: a pair does not inherit the base's other ones."""
    keys = [k for k in hparams.names("config", "optimizer") if k != "optimizer"]
    fields = hparams.names("config")
    return {**{k: hparams.TABLE[k].default for k in keys},
            **hparams.check_all({k: v for k, v in changes.items()
                                 if k in fields and not hparams.is_missing(v)})}


def pair_configs(base: Config, configs: Mapping[hparams.Pair, Mapping]) -> list[Config]:
    """One contestant per pair: ``base`` with the pair and its chosen settings (the
    optimizer's other settings at the table's defaults)."""
    return [base.replace(**{**_pair_settings(settings), "activation": a, "optimizer": o})
            for (a, o), settings in configs.items()]


def preset(name: str, base: Config, sweep_configs: Mapping[hparams.Pair, Mapping] | None = None,
           contestants: str = "") -> list[Config]:
    """The contestants of a preset (``hparams`` row ``preset``), built on ``base``:

    - ``paper``: the report's nine pairs with its Table I settings;
    - ``cv``: the pairs of a saved sweep with its chosen settings (``sweep_configs``,
      ``reproduce.configs_from_sweep``);
    - ``optimizers`` / ``activations`` / ``lrs``: ``base`` with only the optimizer (each
      of them), the activation (each of the report's) or the learning rate (each of the
      cross-validation grid's) varied;
    - ``custom``: ``contestants``, one a line (``parse_contestants``).
    """
    name = hparams.check("preset", name)
    if name == "paper":
        return pair_configs(base, reproduce.PAPER_CONFIGS)
    if name == "cv":
        if not sweep_configs:
            raise ValueError(f"{hparams.label('cv').capitalize()} need a "
                             "saved sweep with finished pairs: run one on the "
                             "Cross-validation page or with python -m minidl sweep")
        return pair_configs(base, {p: c for p, c in sweep_configs.items()})
    if name == "optimizers":
        return [base.replace(optimizer=o) for o in hparams.OPTIMIZERS]
    if name == "activations":
        return [base.replace(activation=a) for a in hparams.REPORT_ACTIVATIONS]
    if name == "lrs":
        return [base.replace(lr=lr) for lr in hparams.TABLE["lr"].grid["*"]]
    return [base.replace(**changes) for changes in parse_contestants(contestants)]


def parse_contestants(text: str) -> list[dict]:
    """``"activation=relu lr=0.001\\noptimizer=adam"`` → one dict of changes per line (or
    per ``;``): ``name=value`` pairs, each ``hparams.parse``d.  ``ValueError`` names the
    line and the setting."""
    text = hparams.check("contestants", text)
    lines = [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]
    if not lines:
        raise ValueError("Invalid hand-made contestants (contestants): none given "
                         "(expected one contestant a line, e.g. activation=relu lr=0.001)")
    if len(lines) > MAX_CONTESTANTS:
        raise ValueError(f"Invalid hand-made contestants (contestants): {len(lines)} lines "
                         f"(expected at most {MAX_CONTESTANTS})")
    out = []
    for number, line in enumerate(lines, 1):
        changes = {}
        for item in line.split():
            name, sep, value = item.partition("=")
            if not sep or name not in hparams.names("config"):
                shown = item if len(item) <= 30 else item[:29] + "…"
                raise ValueError(f"Invalid contestant {number}: {shown!r} (expected name=value "
                                 f"with a setting's name, e.g. lr=0.001)")
            if name in SHARED:
                raise ValueError(f"Invalid contestant {number}: {name} is shared by the whole "
                                 "race (set it for all)")
            try:
                changes[name] = hparams.parse(name, value)
            except ValueError as error:
                raise ValueError(f"Contestant {number}: {error}") from None
        out.append(changes)
    return out


def check_contestants(configs: Sequence[Config]) -> list[Config]:
    """1 to ``MAX_CONTESTANTS`` configs that share ``SHARED`` (and not your own points)."""
    configs = list(configs)
    if not 1 <= len(configs) <= MAX_CONTESTANTS:
        raise ValueError(f"Invalid number of contestants: {len(configs)} (expected 1 to "
                         f"{MAX_CONTESTANTS})")
    for c in configs:
        if not isinstance(c, Config):
            raise TypeError(f"a contestant must be a train.Config, got {type(c).__name__}")
        c.validate()
        if c.dataset == "custom":
            raise ValueError("a race draws its data: the data set 'custom' (your own points) "
                             "cannot race")
    for name in SHARED:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ValueError(f"contestants must share the {hparams.label(name)} ({name}); "
                             f"got {', '.join(map(hparams.format_value, sorted(values)))}")
    return configs


def details(configs: Sequence[Config]) -> list[str]:
    """Each contestant's settings that differ between contestants (``lr 0.001, batch 20``),
    the pair aside."""
    varying = [n for n in hparams.names("config") if n not in ("activation", "optimizer")
               and len({getattr(c, n) for c in configs}) > 1]
    return [hparams.describe(c.to_dict(), [n for n in varying
                                           if hparams.TABLE[n].applies_to(c.optimizer)])
            for c in configs]


def labels(configs: Sequence[Config]) -> list[str]:
    """Short names that tell the contestants apart: the pair (``SGD + Tanh``) when the pairs
    do, else the pair and the settings in which they differ (``SGD + Tanh, lr 0.001``); a
    repeated name gets ``#2``."""
    pairs = [hparams.pair_label((c.activation, c.optimizer)) for c in configs]
    if len(set(pairs)) == len(pairs):
        return pairs
    out: list[str] = []
    for pair, detail in zip(pairs, details(configs)):
        text = ", ".join(filter(None, [pair, detail]))
        count = sum(1 for o in out if o == text or o.startswith(text + " #"))
        out.append(text if count == 0 else f"{text} #{count + 1}")
    return out


# ---------------------------------------------------------------- a population

def _runs(values: Sequence[str]) -> list[tuple[str, int, int]]:
    """``["relu", "relu", "tanh"]`` → ``[("relu", 0, 2), ("tanh", 2, 3)]``: contiguous runs."""
    out, start = [], 0
    for value, group in groupby(values):
        count = len(list(group))
        out.append((value, start, start + count))
        start += count
    return out


def member_order(configs: Sequence[Config]) -> list[int]:
    """Indices of ``configs`` with each optimizer's members contiguous (one optimizer per
    run of members; ``nn.PerMember`` needs no order)."""
    return sorted(range(len(configs)), key=lambda i: (
        hparams.OPTIMIZERS.index(configs[i].optimizer), configs[i].activation, i))


class _Population:
    """Contestants with one ``POPULATION_KEY`` trained as one batched network.

    ``index`` (this population's place in the race's ``model``) picks its weights there, so
    that a frozen copy of the race (its own ``model``) draws from its own weights.
    """

    def __init__(self, race: Race, members: list[int], index: int):
        self.members, self.index = members, index
        configs = [race.contestants[i] for i in members]
        first = configs[0]
        M = len(members)
        self.sizes = first.sizes()
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers.append(nn.Linear(n_in, n_out, members=M))
            if i < len(self.sizes) - 2:
                layers.append(nn.PerMember([c.activation for c in configs]))
        self.model = nn.Sequential(*layers)
        self.generators = [torch.Generator().manual_seed(c.init_seed) for c in configs]
        for i, (c, g) in enumerate(zip(configs, self.generators)):
            self.model.init_params(c.init, c.gain, g, member=i,
                                   **{k: getattr(c, k) for k in INIT_CONVENTIONS})
        # one member-major (M, P) buffer, then one optimizer per run of an optimizer's members
        # on its row slice (views: updates land in the model's weights)
        params = self.model.param()
        optim.flatten_([p for p, _ in params], M)
        optim.flatten_([g for _, g in params], M)
        self.optimizers: list[tuple[optim.Optimizer, int, int]] = []
        for kind, start, stop in _runs([c.optimizer for c in configs]):
            part = configs[start:stop]
            hyper = {}
            for k in hparams.optimizer_keys(kind):
                values = [getattr(c, k) for c in part]
                hyper[k] = values[0] if len(set(values)) == 1 else values
            views = [(p[start:stop], g[start:stop]) for p, g in params]
            self.optimizers.append((optim.make(kind, views, **hyper), start, stop))
        self.loss = nn.LossMSE(members=True, reduction=[c.loss for c in configs])
        self.batch_size, self.shuffle = first.batch_size, first.shuffle
        self.y_train, self.y_test = race.y_train, race.y_test
        self.inputs_train = data.encode_inputs(race.X_train, first.inputs, first.features)
        self.inputs_test = data.encode_inputs(race.X_test, first.inputs, first.features)
        self.T_train = data.encode_targets(race.y_train, first.targets)
        self.T_test = data.encode_targets(race.y_test, first.targets)
        self.frozen = torch.zeros(M, dtype=torch.bool)
        self.epoch_rows: tuple[torch.Tensor, torch.Tensor] | None = None
        self.cursor = 0

    def start_epoch(self) -> None:
        n = self.inputs_train.shape[0]
        orders = torch.stack([torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
                              for g in self.generators])
        self.epoch_rows, self.cursor = (self.inputs_train[orders], self.T_train[orders]), 0

    def epoch_done(self) -> bool:
        return self.epoch_rows is None or self.cursor >= self.epoch_rows[0].shape[1] \
            or bool(self.frozen.all())

    def step(self) -> None:
        """One minibatch of every member (``train.train_step``, with one update per
        optimizer run)."""
        X, T = self.epoch_rows
        stop = self.cursor + self.batch_size
        x, t = X[:, self.cursor:stop], T[:, self.cursor:stop]
        self.model.backward(self.loss.gradient(self.model.forward(x), t), accumulate=False,
                            input_grad=False)
        for optimizer, _, _ in self.optimizers:
            optimizer.step()
        self.cursor = stop

    def metrics(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Each member's ``Run.metrics``, as ``(M,)`` tensors."""
        M = len(self.members)
        out = {}
        for name, X, y, T in (("train", self.inputs_train, self.y_train, self.T_train),
                              ("test", self.inputs_test, self.y_test, self.T_test)):
            loss, acc = evaluate(model, X.expand(M, *X.shape), y, T)
            out[f"{name}_loss"], out[f"{name}_acc"] = loss, acc
        return out

    def freeze(self, members: torch.Tensor) -> None:
        """Stop training the given members (a bool mask over this population's members)."""
        self.frozen |= members
        for optimizer, start, stop in self.optimizers:
            local = members[start:stop]
            if local.any():
                optimizer.freeze_members(local)


class _Weights(nn.Module):
    """Every population's network, as one module: what ``ui.background`` sends between
    processes (``param()``) and copies for a frozen view (``copy.deepcopy``)."""

    def __init__(self, models: list[nn.Sequential]):
        self.modules = models

    def param(self) -> list[nn.ParamGrad]:
        return [pg for m in self.modules for pg in m.param()]


# ---------------------------------------------------------------- the race

class Race:
    """Contestants trained side by side; see the module docstring.

    Attributes: ``contestants`` (configs), ``names`` (``labels``), ``epoch`` (epochs the race
    has run), ``history`` (one dict per contestant per epoch it trained: ``HISTORY_COLUMNS``),
    ``diverged`` (every contestant has: nothing is left to train), ``health`` (always empty:
    a race keeps no layer statistics).
    """

    def __init__(self, contestants: Sequence[Config], data_sets: tuple | None = None):
        self.contestants = check_contestants(contestants)
        self.names = labels(self.contestants)
        c = self.contestants[0]
        self.X_train, self.y_train, self.X_test, self.y_test = data_sets or data.train_test(
            c.dataset, c.n_train, c.n_test, c.data_seed, c.noise)
        self.budget = c.epochs
        self.epoch = 0
        self.history: list[dict] = []
        self.health: list[dict] = []
        self.diverged = False  # every contestant has diverged
        self._out = torch.zeros(len(self.contestants), dtype=torch.bool)  # those that have
        groups: dict[tuple, list[int]] = {}
        for i, config in enumerate(self.contestants):
            groups.setdefault(tuple(getattr(config, k) for k in POPULATION_KEY), []).append(i)
        self.populations = []
        for index, members in enumerate(groups.values()):
            order = member_order([self.contestants[i] for i in members])
            self.populations.append(_Population(self, [members[i] for i in order], index))
        self.model = _Weights([p.model for p in self.populations])
        self._where = {i: (p, k) for p in self.populations for k, i in enumerate(p.members)}

    # -------------------------------------------------------- training

    def train_steps(self, max_seconds: float = math.inf,
                    clock: Callable[[], float] = time.perf_counter) -> list[dict] | None:
        """Train minibatches of the current epoch for up to ``max_seconds`` (at least one),
        population after population.  Returns the epoch's history rows if the epoch ended,
        else ``None`` (the next call goes on where this one stopped)."""
        if self.diverged:
            raise RuntimeError("every contestant diverged; start a new race")
        started = clock()
        with torch.inference_mode():
            for population in self.populations:
                if population.epoch_rows is None and not population.frozen.all():
                    population.start_epoch()
                while not population.epoch_done():
                    population.step()
                    if clock() - started >= max_seconds and not self._epoch_finished():
                        return None
            return self._end_epoch()

    def _epoch_finished(self) -> bool:
        return all(p.epoch_done() for p in self.populations)

    def train_epoch(self) -> list[dict]:
        return self.train_steps()

    def _end_epoch(self) -> list[dict]:
        self.epoch += 1
        rows = []
        for population in self.populations:
            population.epoch_rows = None
            metrics = population.metrics(population.model)
            values = {k: v.tolist() for k, v in metrics.items()}
            bad = has_diverged(metrics["train_loss"]) | ~torch.stack(
                [torch.isfinite(v) for v in metrics.values()]).all(0)
            newly = bad & ~population.frozen
            for k, i in enumerate(population.members):
                if population.frozen[k]:
                    continue
                rows.append({"contestant": i, "epoch": self.epoch,
                             **{name: values[name][k] for name in values},
                             "diverged": bool(newly[k])})
            if newly.any():
                population.freeze(newly)
                self._out[[population.members[k] for k in range(len(newly)) if newly[k]]] = True
        rows.sort(key=lambda r: r["contestant"])
        self.history += rows
        self.diverged = bool(self._out.all())
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
            population.epoch_rows = None

    def set_hyperparameters(self, **values) -> None:
        raise ValueError("a race's settings cannot change while it runs; start a new race")

    # -------------------------------------------------------- reading

    def predict(self, contestant: int, X: torch.Tensor) -> torch.Tensor:
        """Contestant ``contestant``'s outputs for points ``X : (rows, 2)``."""
        population, k = self._where[contestant]
        c = self.contestants[contestant]
        M = len(population.members)
        inputs = data.encode_inputs(X, c.inputs, c.features)
        out = self.model.modules[population.index].forward(
            inputs.expand(M, *inputs.shape))
        return out[k]

    def predict_all(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Every contestant's outputs for ``X``: one forward pass per population."""
        out: list[torch.Tensor | None] = [None] * len(self.contestants)
        for population in self.populations:
            c = self.contestants[population.members[0]]
            inputs = data.encode_inputs(X, c.inputs, c.features)
            result = self.model.modules[population.index].forward(
                inputs.expand(len(population.members), *inputs.shape))
            for k, i in enumerate(population.members):
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

