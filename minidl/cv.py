"""k-fold cross-validation over hyperparameter grids, and sweeps over activation × optimizer.

``grid_search`` scores every configuration of a grid (the cartesian product of
its value lists) by k-fold cross-validation: each (configuration, fold) pair is
one member of ``minidl.population``, trained on the other folds' rows and
scored on its own fold.  Within a fold, every configuration starts from the
same initial weights and sees the same minibatch order (for equal batch
sizes), so configurations are compared on equal terms.

Results are a pandas table in the spirit of scikit-learn's ``cv_results_``:
one row per configuration with ``split0_score`` …, ``mean_score``,
``std_score``, ``rank``.  With a ``store`` folder, finished configurations are
appended to a CSV as they complete, and a rerun skips them (resume).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import nn
from . import population as pop

ACTIVATIONS = ("relu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
OPTIMIZER_KEYS = {
    "sgd": ("lr", "batch_size", "momentum"),
    "adam": ("lr", "batch_size", "beta1", "beta2", "eps"),
    "rmsprop": ("lr", "batch_size", "rho", "eps"),
}
INIT_KEYS = ("init", "gain")
DEFAULTS = {"lr": 0.01, "batch_size": 20, "momentum": 0.0, "beta1": 0.9, "beta2": 0.999,
            "eps": 1e-8, "rho": 0.99, "gain": 1.0, "init": "xavier"}
# The seed report's Table I values; SGD also gets lr 1 and momentum 0.9, without
# which Sigmoid (whose gradients are small) does not learn in a few dozen epochs.
DEFAULT_GRIDS = {
    "sgd": {"lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "batch_size": [1, 10, 20],
            "momentum": [0.0, 0.9]},
    "adam": {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "batch_size": [1, 10, 20],
             "beta1": [0.8, 0.9], "beta2": [0.99, 0.999], "eps": [1e-9, 1e-8]},
    "rmsprop": {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "batch_size": [1, 10, 20],
                "rho": [0.9, 0.99], "eps": [1e-9, 1e-8]},
}


# Sigmoid's derivative is at most 1/4, so its gradients fade layer by layer:
# it also tries a 16× larger init variance (Glorot & Bengio's 4× std for sigmoid).
ACTIVATION_GRIDS = {"sigmoid": {"gain": [1.0, 16.0]}}


def default_grid_for(activation: str, optimizer: str) -> dict[str, list]:
    """The default grid of one pair: its optimizer's grid plus its activation's extras."""
    return {**DEFAULT_GRIDS[optimizer], **ACTIVATION_GRIDS.get(activation, {})}


SIZES = [2, 25, 25, 25, 2]
KEY_COLUMNS = ["activation", "optimizer"]


def kfold(n: int, k: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffle ``range(n)`` and cut it into ``k`` folds of sizes differing by at most one.

    Returns ``k`` pairs ``(train_indices, validation_indices)``; every index is
    in exactly one validation fold.
    """
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"folds must be an integer >= 2, got {k!r}")
    if not isinstance(n, int) or n < k:
        raise ValueError(f"need at least as many samples as folds, got n={n!r}, folds={k}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    folds = torch.tensor_split(order, k)
    return [(torch.cat(folds[:i] + folds[i + 1:]), folds[i]) for i in range(k)]


def grid_keys(optimizer: str) -> tuple[str, ...]:
    return (*OPTIMIZER_KEYS[optimizer], *INIT_KEYS)


def validate_grid(grid: dict, optimizer: str | None = None) -> dict[str, list]:
    """Check a grid and return it cleaned (only keys that apply to ``optimizer``).

    Raises ``ValueError`` naming the key and value for: an unknown key, an
    empty list, a value that is not a number, or one out of its range.
    """
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict of hyperparameter -> list of values")
    allowed = set(DEFAULTS)
    clean: dict[str, list] = {}
    for key, values in grid.items():
        if key not in allowed:
            raise ValueError(f"unknown grid key {key!r}; expected some of {sorted(allowed)}")
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            raise ValueError(f"grid[{key!r}] is empty: give at least one value")
        for v in values:
            _check_value(key, v)
        clean[key] = values
    if optimizer is not None:
        if optimizer not in OPTIMIZER_KEYS:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
        clean = {k: v for k, v in clean.items() if k in grid_keys(optimizer)}
    return clean


def _check_value(key: str, v) -> None:
    if key == "init":
        if v not in nn.INIT_METHODS:
            raise ValueError(f"grid['init'] value {v!r} is not one of {nn.INIT_METHODS}")
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"grid[{key!r}] value {v!r} is not a finite number")
    if key == "batch_size" and (not float(v).is_integer() or v < 1):
        raise ValueError(f"grid['batch_size'] value {v!r} must be a positive integer")
    bounds = {"lr": (0, None), "eps": (0, None), "gain": (0, None), "momentum": (0, 1),
              "beta1": (0, 1), "beta2": (0, 1), "rho": (0, 1)}
    if key in bounds:
        low, high = bounds[key]
        closed = key in ("momentum", "beta1", "beta2", "rho")
        if (v < low if closed else v <= low) or (high is not None and v >= high):
            want = f"in [{low}, {high})" if high is not None else f"> {low}"
            raise ValueError(f"grid[{key!r}] value {v!r} is out of range (expected {want})")


def configurations(grid: dict[str, list]) -> list[dict]:
    """The cartesian product of the grid, in key order, as a list of dicts."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def member_params(config: dict) -> dict:
    """A configuration completed with ``DEFAULTS`` for every hyperparameter it leaves out."""
    params = {**DEFAULTS, **config}
    params["batch_size"] = int(params["batch_size"])
    return params


def _config_id(config: dict) -> str:
    """The same for a configuration however many of its values are left at ``DEFAULTS``."""
    full = member_params(config)
    return json.dumps({k: full[k] for k in sorted(full)}, sort_keys=True)


@dataclass
class GridResult:
    """``table``: one row per configuration; ``best_params``: the top-ranked one."""

    table: pd.DataFrame
    keys: list[str]

    @property
    def best_params(self) -> dict:
        finite = self.table[~self.table["diverged"]]
        if finite.empty:
            return {}
        best = finite.sort_values(["rank"]).iloc[0]
        return {k: _plain(best[k]) for k in self.keys}


def _plain(value):
    """numpy scalars → Python scalars."""
    value = value.item() if hasattr(value, "item") else value
    return value


def grid_search(X: torch.Tensor, y: torch.Tensor, activation: str, optimizer: str,
                grid: dict | None = None, folds: int = 5, epochs: int = 25, seed: int = 0,
                engine: str = "batched", store: str | Path | None = None,
                progress: pop.Progress | None = None, sizes: list[int] | None = None
                ) -> GridResult:
    """k-fold cross-validation of every configuration in ``grid``.

    ``store``: a CSV file; configurations already in it are not trained again,
    new ones are appended as each population finishes.
    """
    activation, optimizer = activation.lower(), optimizer.lower()
    if activation not in nn.ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    if engine not in ("batched", "sequential"):
        raise ValueError(f"engine must be 'batched' or 'sequential', got {engine!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if grid is None:
        grid = default_grid_for(activation, optimizer) if optimizer in DEFAULT_GRIDS else {}
    grid = validate_grid(grid, optimizer)
    keys = [k for k in grid_keys(optimizer) if k in grid]
    splits = kfold(len(y), folds, seed)
    done = _read_store(store, epochs, seed, folds, len(y))
    every = configurations({k: grid[k] for k in keys})
    todo = [c for c in every if _config_id(c) not in done]
    members = [pop.Member(member_params(c), train, val, seed=seed * 1000 + f)
               for c in todo for f, (train, val) in enumerate(splits)]
    rows = []
    # one population per batch size, so a cancel loses at most the running one
    by_batch: dict[int, list[int]] = {}
    for i, c in enumerate(todo):
        by_batch.setdefault(member_params(c)["batch_size"], []).append(i)
    total = sum(_steps(c, splits, epochs) for c in every)
    finished = total - sum(_steps(c, splits, epochs) for c in todo)  # resumed work

    def scaled(done_units: int, _: int):
        return None if progress is None else progress(finished + done_units, total)

    for indices in by_batch.values():
        group = [members[i * folds + f] for i in indices for f in range(folds)]
        results = pop.fit(X, y, group, sizes or SIZES, activation, optimizer, epochs,
                          batched=engine == "batched", progress=scaled)
        finished += sum(_steps(todo[i], splits, epochs) for i in indices)
        new_rows = [_row(todo[i], results[j * folds:(j + 1) * folds], activation, optimizer,
                         epochs, seed) | {"n": len(y)} for j, i in enumerate(indices)]
        _append_store(store, new_rows)
        rows += new_rows
    table = pd.DataFrame([*done.values(), *rows])
    for k in keys:  # stored rows may predate a key the grid now spells out
        table[k] = table[k].fillna(DEFAULTS[k]) if k in table else DEFAULTS[k]
    return GridResult(_ranked(table, keys, folds), keys)


def _steps(config: dict, splits: list, epochs: int) -> int:
    """Optimizer steps that cross-validating one configuration takes, over all folds."""
    batch = int(config.get("batch_size", DEFAULTS["batch_size"]))
    return epochs * sum(math.ceil(len(train) / batch) for train, _ in splits)


def _row(config: dict, results: list[pop.MemberResult], activation: str, optimizer: str,
         epochs: int, seed: int) -> dict:
    scores = [r.eval_acc for r in results]
    finite = [s for s in scores if not math.isnan(s)]
    diverged = any(r.diverged for r in results)
    row = {"activation": activation, "optimizer": optimizer, **config}
    row.update({f"split{i}_score": s for i, s in enumerate(scores)})
    row["mean_score"] = float("nan") if diverged else sum(finite) / len(finite)
    row["std_score"] = float("nan") if diverged else float(torch.tensor(finite).std(
        unbiased=False))
    losses = [r.train_loss for r in results]
    row["mean_train_loss"] = float("nan") if diverged else sum(losses) / len(losses)
    row["fit_time"] = sum(r.fit_time for r in results)
    row["diverged"] = diverged
    row["epochs"], row["seed"] = epochs, seed
    return row


def _ranked(table: pd.DataFrame, keys: list[str], folds: int) -> pd.DataFrame:
    if table.empty:
        return table
    table = table.copy()
    table["diverged"] = table["diverged"].astype(bool)
    table["rank"] = table["mean_score"].rank(ascending=False, method="min",
                                             na_option="bottom").astype(int)
    if "batch_size" in table:
        table["batch_size"] = table["batch_size"].astype(int)
    splits = [f"split{i}_score" for i in range(folds)]
    front = KEY_COLUMNS + keys + splits + ["mean_score", "std_score", "rank"]
    rest = [c for c in table.columns if c not in front]
    return table[front + rest].sort_values("rank", kind="stable").reset_index(drop=True)


def _read_store(store: str | Path | None, epochs: int, seed: int, folds: int, n: int
                ) -> dict[str, dict]:
    """Rows already stored for the same epochs, seed, folds and data size, by configuration."""
    if store is None or not Path(store).exists():
        return {}
    table = _read_rows(store)
    if f"split{folds - 1}_score" not in table or f"split{folds}_score" in table:
        raise ValueError(f"{store} holds a search with another number of folds than {folds}; "
                         "use another folder")
    table = table[(table["epochs"] == epochs) & (table["seed"] == seed) & (table["n"] == n)]
    done = {}
    for row in table.to_dict("records"):
        config = {k: row[k] for k in DEFAULTS if k in row and not _missing(row[k])}
        done[_config_id(_normalise(config))] = row
    return done


def _missing(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _normalise(config: dict) -> dict:
    return {k: int(v) if k == "batch_size" else v for k, v in config.items()}


def _read_rows(path: str | Path) -> pd.DataFrame:
    """A store's rows; a last line still being written (no ``seed`` yet) is left out."""
    return pd.read_csv(path, on_bad_lines="skip").dropna(subset=["seed"])


def _append_store(store: str | Path | None, rows: list[dict]) -> None:
    if store is None or not rows:
        return
    path = Path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if path.exists():  # appended rows must follow the header already written
        header = list(pd.read_csv(path, nrows=0).columns)
        extra = set(frame.columns) - set(header)
        if extra:
            raise ValueError(f"{path} was written for other grid keys (new: {sorted(extra)}); "
                             "use another folder")
        frame = frame.reindex(columns=header)
    frame.to_csv(path, mode="a", header=not path.exists(), index=False)


@dataclass
class SweepResult:
    """Every pair's ``GridResult``, all rows in one ``table``, and Table I as ``optimal``."""

    results: dict[tuple[str, str], GridResult]

    @property
    def table(self) -> pd.DataFrame:
        return pd.concat([r.table for r in self.results.values()], ignore_index=True)

    @property
    def optimal(self) -> pd.DataFrame:
        return optimal_table({pair: r.best_params | {"score": _best_score(r)}
                              for pair, r in self.results.items()})


def _best_score(result: GridResult) -> float:
    finite = result.table[~result.table["diverged"]]
    return float(finite["mean_score"].max()) if not finite.empty else float("nan")


def optimal_table(best: dict[tuple[str, str], dict]) -> pd.DataFrame:
    """Table I layout: a row per activation, per optimizer its chosen settings and CV accuracy.

    ``best`` maps ``(activation, optimizer)`` to a dict of chosen
    hyperparameters plus ``score``; columns are named ``"<optimizer> <key>"``.
    """
    activations = list(dict.fromkeys(a for a, _ in best))
    optimizers = list(dict.fromkeys(o for _, o in best))
    # init keys get a column only where some pair searched them (e.g. Sigmoid's gain)
    keys = {o: [*OPTIMIZER_KEYS[o], *[k for k in INIT_KEYS if any(
        k in chosen for (_, o2), chosen in best.items() if o2 == o)]] for o in optimizers}
    rows = []
    for a in activations:
        row = {"activation": a}
        for o in optimizers:
            chosen = best.get((a, o), {})
            for k in keys[o]:
                row[f"{o} {k}"] = chosen.get(k)
            row[f"{o} accuracy"] = chosen.get("score")
        rows.append(row)
    return pd.DataFrame(rows).set_index("activation")


def sweep(X: torch.Tensor, y: torch.Tensor, activations: Iterable[str] = ACTIVATIONS,
          optimizers: Iterable[str] = OPTIMIZERS, grid: dict | None = None, folds: int = 5,
          epochs: int = 25, seed: int = 0, engine: str = "batched",
          store: str | Path | None = None, progress: pop.Progress | None = None,
          workers: int = pop.DEFAULT_WORKERS, overrides: dict | None = None) -> SweepResult:
    """``grid_search`` for every activation × optimizer pair.

    ``grid=None`` uses each pair's ``default_grid_for``; a given grid is shared,
    each optimizer taking the keys that apply to it.  ``overrides`` replaces
    some keys' values in every pair's grid (e.g. ``{"batch_size": [10, 20]}``).

    ``store``: a folder; each pair's rows go to ``<activation>-<optimizer>.csv``
    in it, so a cancelled sweep resumes where it stopped.
    ``progress(done, total)`` counts optimizer steps over the whole sweep.
    Pairs run ``workers`` at a time on threads (one core each).
    """
    pairs = [(a.lower(), o.lower()) for a in activations for o in optimizers]
    if not pairs:
        raise ValueError("choose at least one activation and one optimizer")
    grids = {(a, o): validate_grid({**(default_grid_for(a, o) if grid is None else grid),
                                    **(overrides or {})}, o)
             for a, o in pairs}
    splits = kfold(len(y), folds, seed)
    costs = [sum(_steps(c, splits, epochs) for c in configurations(grids[p])) for p in pairs]

    def task(pair: tuple[str, str]):
        path = None if store is None else Path(store) / f"{pair[0]}-{pair[1]}.csv"
        return lambda report: grid_search(X, y, *pair, grid=grids[pair], folds=folds,
                                          epochs=epochs, seed=seed, engine=engine, store=path,
                                          progress=report)

    results = pop.run_parallel([task(p) for p in pairs], costs, progress, workers)
    return SweepResult(dict(zip(pairs, results)))


def estimate_steps(grid: dict, optimizer: str, folds: int, epochs: int, n_train: int) -> int:
    """Optimizer steps (summed over members) a grid search will take: the cost of a sweep."""
    grid = validate_grid(grid, optimizer)
    configs = math.prod(len(v) for k, v in grid.items() if k != "batch_size")
    return sum(configs * folds * epochs * math.ceil(n_train / int(b))
               for b in grid.get("batch_size", [DEFAULTS["batch_size"]]))


def estimate_members(grid: dict, optimizer: str, folds: int) -> int:
    grid = validate_grid(grid, optimizer)
    return math.prod(len(v) for v in grid.values()) * folds


def load_sweep(folder: str | Path) -> SweepResult:
    """Read a stored sweep's CSV files back (finished configurations only)."""
    results = {}
    for path in sorted(Path(folder).glob("*-*.csv")):
        activation, optimizer = path.stem.split("-", 1)
        if optimizer not in OPTIMIZER_KEYS:
            continue
        table = _read_rows(path)
        keys = [k for k in grid_keys(optimizer) if k in table.columns]
        folds = sum(c.startswith("split") for c in table.columns)
        results[(activation, optimizer)] = GridResult(_ranked(table, keys, folds), keys)
    return SweepResult(results)

