"""k-fold cross-validation of a grid of configurations, for one activation × optimizer pair.

A *configuration* is one point of a grid: a value for every searchable setting
(``hparams.grid_keys``; the ones a grid leaves out take the table's default).
``grid_search`` scores every configuration by k-fold cross-validation: each
(configuration, fold) pair is one member of ``minidl.population``, trained on
the other folds' rows and scored on its own fold.  Within a fold, every
configuration starts from the same initial weights and sees the same minibatch
order (for equal batch sizes), so configurations are compared on equal terms.

Results are a pandas table in the spirit of scikit-learn's ``cv_results_``:
one row per configuration with ``split0_score`` …, ``mean_score``,
``std_score``, ``rank``.  Persistence is the caller's (``minidl.sweeps``):
``done_rows`` are configurations already scored (skipped, but ranked with the
rest) and ``on_rows`` receives new rows as each population finishes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
import torch

from .. import data, hparams
from ..engine import fit as pop
from ..jobs import limits, tasks

KEY_COLUMNS = ["activation", "optimizer"]
SIZES = [2, *hparams.TABLE["hidden"].default, 2]  # the report's network


def kfold(n: int, k: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle ``range(n)`` and cut it into ``k`` folds of sizes differing by at most one.

    Returns ``k`` pairs ``(train_indices, validation_indices)``; every index is
    in exactly one validation fold.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 2:
        raise ValueError(f"folds must be an integer >= 2, got {k!r}")
    if not isinstance(n, int) or n < k:
        raise ValueError(f"need at least as many samples as folds, got n={n!r}, folds={k}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    folds = torch.tensor_split(order, k)
    return [(torch.cat(folds[:i] + folds[i + 1:]), folds[i]) for i in range(k)]


def fold_train_size(n: int, k: int) -> int:
    """Training rows of the largest fold's members (``kfold``'s split of ``n`` rows)."""
    return n - n // k


def configurations(grid: Mapping[str, list]) -> list[dict]:
    """The cartesian product of the grid, in key order, as a list of dicts."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


_SEARCHABLE = [n for n, s in hparams.TABLE.items() if s.searchable]


def complete(config: Mapping) -> dict:
    """A configuration with the table's default for every searchable setting it leaves out."""
    given = {k: v for k, v in config.items() if k in _SEARCHABLE and not hparams.is_missing(v)}
    return {**{k: hparams.TABLE[k].default for k in _SEARCHABLE}, **hparams.check_all(given)}



def config_id(config: Mapping) -> str:
    """The same for a configuration however many of its values are left at their defaults."""
    return json.dumps(complete(config), sort_keys=True)


def config_steps(config: Mapping, splits: list, epochs: int) -> int:
    """Optimizer steps of cross-validating one configuration, over all folds."""
    batch = complete(config)["batch_size"]
    return sum(pop.steps(len(train), batch, epochs) for train, _ in splits)


@dataclass
class GridResult:
    """``table``: one row per configuration, best first; ``keys``: the searched settings."""

    table: pd.DataFrame
    keys: list[str]

    @property
    def best_config(self) -> dict:
        """The top-ranked non-diverged configuration (``{}`` if there is none)."""
        finite = self.table[~self.table["diverged"]] if not self.table.empty else self.table
        if finite.empty:
            return {}
        best = finite.sort_values(["rank"]).iloc[0]
        return {k: _plain(best[k]) for k in self.keys}

    @property
    def best_score(self) -> float:
        finite = self.table[~self.table["diverged"]] if not self.table.empty else self.table
        return float(finite["mean_score"].max()) if not finite.empty else math.nan


def _plain(value):
    """numpy scalars → Python scalars."""
    return value.item() if hasattr(value, "item") else value


@dataclass
class Search:
    """One pair's grid search, planned: ``tasks`` train the configurations not yet scored
    (slices of about ``tasks.POPULATION_SECONDS``, each a ``score`` call), and ``result``
    ranks their rows with those already scored."""

    keys: list[str]
    folds: int
    done: list[dict]
    tasks: list[tasks.Task]

    def result(self, rows: Iterable[Mapping]) -> GridResult:
        table = pd.DataFrame([*self.done, *rows])
        for k in self.keys:  # stored rows may predate a key the grid now spells out
            default = hparams.TABLE[k].default
            table[k] = table[k].fillna(default) if k in table else default
        return GridResult(rank_table(table, self.keys, self.folds), self.keys)


def plan(X: torch.Tensor, y: torch.Tensor, activation: str, optimizer: str,
         grid: Mapping | None = None, folds: int = 5, epochs: int = 25, seed: int = 0,
         engine: str = "batched", done_rows: Iterable[Mapping] = (),
         sizes: list[int] | None = None,
         features: tuple[str, ...] = data.DEFAULT_FEATURES) -> Search:
    """A grid search of ``grid`` (default: ``hparams.default_grid``) as a ``Search``;
    ``grid_search`` documents the arguments.  Every value is checked before anything runs."""
    activation = hparams.check("activation", activation.lower())
    optimizer = hparams.check("optimizer", optimizer.lower())
    if engine not in ("batched", "sequential"):
        raise ValueError(f"engine must be 'batched' or 'sequential', got {engine!r}")
    epochs = hparams.check("epochs", epochs)
    features = hparams.check("features", features)
    sizes = sizes or [len(features), *SIZES[1:]]
    grid = hparams.check_grid(hparams.default_grid(activation, optimizer) if grid is None
                              else grid, optimizer)
    keys = [k for k in hparams.grid_keys(optimizer) if k in grid]
    splits = kfold(len(y), folds, seed)
    done = {config_id(row): dict(row) for row in done_rows}
    todo = [c for c in configurations({k: grid[k] for k in keys}) if config_id(c) not in done]
    work = [tasks.Task(f"{activation}-{optimizer}",
                       sum(config_steps(c, splits, epochs) for c in part), score,
                       (X, y, activation, optimizer, part, splits, epochs, seed, engine, sizes,
                        features)) for part in slices(todo, splits, epochs)]
    return Search(keys, folds, list(done.values()), work)


def grid_search(X: torch.Tensor, y: torch.Tensor, activation: str, optimizer: str,
                grid: Mapping | None = None, folds: int = 5, epochs: int = 25, seed: int = 0,
                engine: str = "batched", done_rows: Iterable[Mapping] = (),
                on_rows: Callable[[list[dict]], None] | None = None,
                progress: pop.Progress | None = None, sizes: list[int] | None = None,
                features: tuple[str, ...] = data.DEFAULT_FEATURES, workers: int = 1
                ) -> GridResult:
    """k-fold cross-validation of every configuration in ``grid`` (default:
    ``hparams.default_grid``).

    ``done_rows``: result rows of configurations already scored (same folds,
    epochs and seed); they are not trained again.  The rest is cut into ``slices`` (about
    ``tasks.POPULATION_SECONDS`` each), which train as tasks (``tasks.run``) on ``workers``
    threads; ``on_rows(rows)`` is called with the new rows as each finishes, so a cancel
    keeps the slices finished (a saved job's slices also keep checkpoints, see
    ``minidl.jobs.tasks``).  ``progress(done, total)`` counts the optimizer steps of this
    call's own work.  ``features``: the network's input features (``data.FEATURES``);
    ``sizes`` defaults to the report's network on them.
    """
    search = plan(X, y, activation, optimizer, grid, folds, epochs, seed, engine, done_rows,
                  sizes, features)
    rows: list[dict] = []

    def save(_: tasks.Task, new_rows: list[dict]) -> None:
        rows.extend(new_rows)
        if on_rows is not None:
            on_rows(new_rows)
    with tasks.pool(workers=workers) as where:
        tasks.run(search.tasks, save, where, progress)
    return search.result(rows)


def slices(configs: list[dict], splits: list, epochs: int,
           budget: float | None = None) -> list[list[dict]]:
    """``configs`` cut into slices that each train as one population in about ``budget``
    seconds (default ``tasks.POPULATION_SECONDS``, estimated by ``tasks.seconds``; a slice of
    one configuration may take longer): a slice's configurations share a batch size, and
    it fits the server's job memory (``population.population_size``).  The slices change
    no result, only how work spreads over workers."""
    if not configs:
        return []
    budget = tasks.POPULATION_SECONDS if budget is None else budget
    by_batch: dict[int, list[dict]] = {}
    for c in configs:
        by_batch.setdefault(complete(c)["batch_size"], []).append(c)
    train, val = splits[0]
    memory = pop.population_size([pop.Member(complete(configs[0]), train, val, 0)], SIZES,
                                 limits.job_memory())
    out = []
    for batch, group in by_batch.items():
        steps = pop.steps(len(train), batch, epochs)
        size = max(1, min(memory // len(splits), tasks.slice_size(len(splits), steps, batch,
                                                                   budget)))
        # equal slices rather than full ones and a stub: the same count, shorter longest
        count = math.ceil(len(group) / size)
        bounds = [round(i * len(group) / count) for i in range(count + 1)]
        out += [group[a:b] for a, b in zip(bounds, bounds[1:])]
    return out


def score(X: torch.Tensor, y: torch.Tensor, activation: str, optimizer: str,
          configs: list[dict], splits: list, epochs: int, seed: int = 0,
          engine: str = "batched", sizes: list[int] | None = None,
          features: tuple[str, ...] = data.DEFAULT_FEATURES, *,
          progress: pop.Progress | None = None, resume: dict | None = None,
          pause_after: float | None = None) -> list[dict]:
    """Cross-validate ``configs`` (one slice, ``slices``) on ``splits``: their result rows.
    Member ``(configuration, fold f)`` is seeded ``seed·1000 + f`` whatever slice it is in,
    so a slice's rows do not depend on how the grid was cut.  ``resume`` and
    ``pause_after``: as in ``population.fit``."""
    folds = len(splits)
    members = [pop.Member({**complete(c), "activation": activation, "optimizer": optimizer},
                          train, val, seed=seed * 1000 + f)
               for c in configs for f, (train, val) in enumerate(splits)]
    results = pop.fit(X, y, members, sizes or [len(features), *SIZES[1:]], epochs,
                      features=features, max_population=1 if engine == "sequential" else None,
                      memory=limits.job_memory(), progress=progress, resume=resume,
                      pause_after=pause_after)
    return [_row(c, results[j * folds:(j + 1) * folds], activation, optimizer, epochs, seed)
            | {"n": len(y)} for j, c in enumerate(configs)]


def _row(config: dict, results: list[pop.MemberResult], activation: str, optimizer: str,
         epochs: int, seed: int) -> dict:
    scores = [r.eval_acc for r in results]
    finite = [s for s in scores if not math.isnan(s)]
    diverged = any(r.diverged for r in results)
    row = {"activation": activation, "optimizer": optimizer, **config}
    row.update({f"split{i}_score": s for i, s in enumerate(scores)})
    row["mean_score"] = math.nan if diverged else sum(finite) / len(finite)
    row["std_score"] = math.nan if diverged else float(torch.tensor(finite).std(unbiased=False))
    losses = [r.train_loss for r in results]
    row["mean_train_loss"] = math.nan if diverged else sum(losses) / len(losses)
    row["fit_time"] = sum(r.fit_time for r in results)
    row["diverged"] = diverged
    row["epochs"], row["seed"] = epochs, seed
    return row


def rank_table(table: pd.DataFrame, keys: list[str], folds: int) -> pd.DataFrame:
    """Rank rows by mean score (diverged last), columns in ``cv_results_`` order."""
    if table.empty:
        return table
    table = table.copy()
    table["diverged"] = table["diverged"].astype(str).str.lower() == "true"
    table["rank"] = table["mean_score"].rank(ascending=False, method="min",
                                             na_option="bottom").astype(int)
    if "batch_size" in table:
        table["batch_size"] = table["batch_size"].fillna(
            hparams.TABLE["batch_size"].default).astype(int)
    splits = [f"split{i}_score" for i in range(folds)]
    front = KEY_COLUMNS + keys + splits + ["mean_score", "std_score", "rank"]
    rest = [c for c in table.columns if c not in front]
    return table[front + rest].sort_values("rank", kind="stable").reset_index(drop=True)
