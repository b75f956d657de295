"""Sweeps: cross-validation of every activation × optimizer pair, their Table I, saved as jobs.

A *sweep* runs ``cv.grid_search`` for each pair, with a grid per optimizer
plus the activation's extras (``hparams.default_grid``: Sigmoid also tries
Xavier gain 16), on the disk task's training set.  ``sweep`` does it in memory;
``SWEEP`` is the saved-job kind (``minidl.jobs``) behind the app's
Cross-validation page and ``minidl sweep``: a part per pair, whose finished
configurations are saved in the store as each slice (``cv.slices``) completes, so a
rerun trains only the ones missing (resume).  When it stops, its folder gets::

    <results root>/sweeps/20250101-120000-3fa9c1/
        sweep.json            spec, creation time, status
        tanh-adam.csv …       each pair's finished configurations, ranked
        optimal.csv           Table I

``optimal_table`` is the report's Table I layout: per pair, the best configuration
and its cross-validated accuracy.

Why this module is long: a sweep in memory, its saved spec, and its rows read back —
each row checked (``check_pair``), since saved data may be damaged or foreign — sit
together so that a sweep is one idea in one file.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .. import data, hparams, jobs
from ..engine import fit as pop
from ..jobs import tasks
from . import cv

DATASET = "disk"
Pair = hparams.Pair


# ---------------------------------------------------------------- in memory

@dataclass
class SweepResult:
    """Every pair's ``GridResult``, all rows in one ``table``, and Table I as ``optimal``."""

    results: dict[Pair, cv.GridResult]

    @property
    def table(self) -> pd.DataFrame:
        return pd.concat([r.table for r in self.results.values()], ignore_index=True)

    @property
    def optimal(self) -> pd.DataFrame:
        return optimal_table({pair: r.best_config | {"score": r.best_score}
                              for pair, r in self.results.items()})

    @property
    def best_rows(self) -> pd.DataFrame:
        """Each pair's top-ranked non-diverged row (the optimal table's configurations)."""
        rows = [r.table[~r.table["diverged"]].head(1) for r in self.results.values()]
        rows = [r for r in rows if not r.empty]
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def optimal_table(best: Mapping[Pair, dict]) -> pd.DataFrame:
    """Table I layout: a row per activation, per optimizer its chosen settings and CV accuracy.

    ``best`` maps ``(activation, optimizer)`` to a chosen configuration plus
    ``score``; columns are named ``"<optimizer> <key>"``: the optimizer's own
    hyperparameters, and other settings only where some pair searched them
    (e.g. Sigmoid's gain).
    """
    activations = list(dict.fromkeys(a for a, _ in best))
    optimizers = list(dict.fromkeys(o for _, o in best))
    keys = {o: [k for k in hparams.grid_keys(o) if k in hparams.optimizer_keys(o)
                or any(k in chosen for (_, o2), chosen in best.items() if o2 == o)]
            for o in optimizers}
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


def pair_grid(activation: str, optimizer: str, grid: Mapping | None = None,
              overrides: Mapping | None = None) -> dict[str, list]:
    """One pair's grid: ``grid`` (default: the table's) with ``overrides`` replacing some
    keys' values, checked and kept to the keys that apply to ``optimizer``."""
    base = hparams.default_grid(activation, optimizer) if grid is None else dict(grid)
    return hparams.check_grid({**base, **(overrides or {})}, optimizer)


def sweep(X: torch.Tensor, y: torch.Tensor,
          activations: Iterable[str] = hparams.REPORT_ACTIVATIONS,
          optimizers: Iterable[str] = hparams.OPTIMIZERS, grid: Mapping | None = None,
          folds: int = 5, epochs: int = 25, seed: int = 0, engine: str = "batched",
          progress: pop.Progress | None = None, workers: int = tasks.DEFAULT_WORKERS,
          overrides: Mapping | None = None) -> SweepResult:
    """``cv.grid_search`` for every activation × optimizer pair, in memory.

    ``grid=None`` uses each pair's default grid; a given grid is shared, each
    optimizer taking the keys that apply to it.  ``overrides`` replaces some
    keys' values in every pair's grid (e.g. ``{"batch_size": [10, 20]}``).
    Every pair's slices train as tasks (``tasks.run``), ``workers`` at a time on threads
    (one core each).
    """
    pairs = [(a.lower(), o.lower()) for a in activations for o in optimizers]
    if not pairs:
        raise ValueError("choose at least one activation and one optimizer")
    searches = {p: cv.plan(X, y, *p, grid=pair_grid(*p, grid, overrides), folds=folds,
                           epochs=epochs, seed=seed, engine=engine) for p in pairs}
    rows: dict[str, list[dict]] = {jobs.part_name(p): [] for p in pairs}
    with tasks.pool(workers=workers) as where:
        tasks.run([t for s in searches.values() for t in s.tasks],
                  lambda task, new: rows[task.part].extend(new), where, progress)
    return SweepResult({p: s.result(rows[jobs.part_name(p)]) for p, s in searches.items()})


# ---------------------------------------------------------------- the spec of a saved sweep

def _default_grids() -> dict[str, dict[str, list]]:
    return {o: hparams.optimizer_grid(o) for o in hparams.OPTIMIZERS}


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains: pairs, a grid per optimizer, folds, epochs and seeds.

    ``seed`` seeds the fold split and every member's initial weights and batch
    order; ``data_seed`` and ``n_train`` pick the training set: the first
    ``n_train`` points of ``data.train_test("disk", n_train, n_train, data_seed)``
    — the Playground's training set for the same seed.
    """

    activations: tuple[str, ...] = hparams.REPORT_ACTIVATIONS
    optimizers: tuple[str, ...] = hparams.OPTIMIZERS
    grids: Mapping[str, Mapping[str, list]] = field(default_factory=_default_grids)
    folds: int = 5
    epochs: int = 25
    seed: int = 0
    data_seed: int = 0
    n_train: int = 1000

    def __post_init__(self) -> None:
        activations = tuple(hparams.check("activation", a) for a in self.activations)
        optimizers = tuple(hparams.check("optimizer", o) for o in self.optimizers)
        if not activations or not optimizers:
            raise ValueError("choose at least one activation and one optimizer")
        if not isinstance(self.grids, Mapping):
            raise ValueError("grids must map each optimizer to its grid")
        missing = [o for o in optimizers if o not in self.grids]
        if missing:
            raise ValueError(f"no grid given for {', '.join(missing)}")
        jobs.check_counts(self, ("folds", "epochs", "seed", "data_seed", "n_train"))
        if self.folds > self.n_train:
            raise ValueError(f"folds ({self.folds}) cannot exceed the training points "
                             f"({self.n_train})")
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "optimizers", optimizers)
        # keep only the selected optimizers' grids, each checked by the settings table
        object.__setattr__(self, "grids", {o: hparams.check_grid(self.grids[o], o)
                                           for o in optimizers})
        for pair in self.pairs:  # with the activation's extras (checked values), still in bounds
            hparams.check_grid_size(self.grid_for(*pair))

    @property
    def pairs(self) -> list[Pair]:
        return [(a, o) for a in self.activations for o in self.optimizers]

    def grid_for(self, activation: str, optimizer: str) -> dict[str, list]:
        """One pair's grid: the activation's extras, updated with the optimizer's grid."""
        return {**hparams.activation_grid(activation), **self.grids[optimizer]}

    def to_dict(self) -> dict:
        return {"activations": list(self.activations), "optimizers": list(self.optimizers),
                "grids": {o: {k: list(v) for k, v in g.items()} for o, g in self.grids.items()},
                "folds": self.folds, "epochs": self.epochs, "seed": self.seed,
                "data_seed": self.data_seed, "n_train": self.n_train, "dataset": DATASET}

    @classmethod
    def from_dict(cls, d: Mapping) -> SweepSpec:
        """``to_dict`` read back; ``ValueError`` for a field of the wrong type or value."""
        for name in ("activations", "optimizers"):
            if name in d and not (isinstance(d[name], list)
                                  and all(isinstance(v, str) for v in d[name])):
                raise ValueError(f"{name} must be a list of names")
        if "grids" in d and not (isinstance(d["grids"], Mapping) and all(
                isinstance(g, Mapping) for g in d["grids"].values())):
            raise ValueError("grids must map each optimizer to its grid")
        names = set(cls.__dataclass_fields__)
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in d.items() if k in names})


def training_data(spec: SweepSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows a sweep cross-validates on (the Playground's training set)."""
    X, y, _, _ = data.train_test(DATASET, spec.n_train, spec.n_train, spec.data_seed)
    return X, y


# ---------------------------------------------------------------- saved rows

# a sweep row's columns (``cv._row``) and what each holds; the settings' columns are checked
# by the settings table, row by row
_ROW_COLUMNS = {"activation": "text", "optimizer": "text", "mean_score": "score",
                "diverged": "flag", "epochs": "count", "seed": "count"}
_MORE_COLUMNS = {"std_score": "number", "mean_train_loss": "number", "fit_time": "number",
                 "n": "count"}
_SETTING_COLUMNS = {n: "text" if s.kind == "choice" else "flag" if s.kind == "bool" else "number"
                    for n, s in hparams.TABLE.items() if s.searchable}


def check_pair(table: pd.DataFrame, where: str, pair: Pair) -> tuple[pd.DataFrame, int]:
    """One pair's rows (text, as ``jobs.read_table`` reads them) as values, and its number of
    folds (0 without rows); ``Damaged`` naming ``where`` if a value is not of its column's
    kind, a row belongs to another pair, or a row's configuration is not one the settings
    table accepts."""
    folds = sum(c.startswith("split") and c.endswith("_score") for c in table.columns)
    scores = {f"split{i}_score": "score" for i in range(folds)}
    table = jobs.check_columns(table, where, {**_ROW_COLUMNS, **scores},
                               {**_MORE_COLUMNS, **_SETTING_COLUMNS})
    if table.empty:
        return table, 0
    if not folds or f"split{folds - 1}_score" not in table:
        raise jobs.Damaged(f"{where}: the fold columns split0_score … are not all there")
    for i, row in zip(table.index, table.to_dict("records")):
        if (row["activation"], row["optimizer"]) != tuple(pair):
            raise jobs.Damaged(f"{where} line {i}: a row of {row['activation'][:20]!r} + "
                               f"{row['optimizer'][:20]!r}, not of {jobs.part_name(pair)}")
        try:
            cv.complete(row)
        except ValueError as error:
            raise jobs.Damaged(f"{where} line {i}: {error}") from None
    return table, folds


def read_pair(path: Path, pair: Pair) -> tuple[pd.DataFrame, int]:
    """``check_pair`` of a pair's CSV file (a sweep's export, or one a person brings)."""
    return check_pair(jobs.read_table(path), path.name, pair)


def _of_spec(table: pd.DataFrame, folds: int, where: str, spec: SweepSpec, pair: Pair
             ) -> list[dict]:
    """The rows of ``table`` that belong to ``spec`` (same folds, epochs, seed, data size)."""
    if table.empty:
        return []
    if folds != spec.folds:
        raise jobs.Damaged(f"{where} holds a search with {folds} folds, not {spec.folds}; use "
                           "another folder")
    keep = (table["epochs"] == spec.epochs) & (table["seed"] == spec.seed)
    if "n" in table:
        keep &= table["n"] == spec.n_train
    grid_ids = {cv.config_id(c) for c in cv.configurations(spec.grid_for(*pair))}
    return [r for r in table[keep].to_dict("records") if cv.config_id(r) in grid_ids]


def stored_rows(job: jobs.Saved, spec: SweepSpec, pair: Pair) -> list[dict]:
    """A pair's saved rows that belong to ``spec``."""
    part = jobs.part_name(pair)
    table, folds = check_pair(jobs.frame(job.rows(part)), f"the rows of {part}", pair)
    return _of_spec(table, folds, f"the rows of {part}", spec, pair)


class SweepKind(jobs.Kind):
    """Sweeps as saved jobs: a part per pair, a unit per configuration."""

    name, folder, meta_name, unit = "sweep", "sweeps", "sweep.json", "configuration"
    cap_env = "MINIDL_SWEEP_CAP"

    def spec_from_dict(self, d: Mapping) -> SweepSpec:
        return SweepSpec.from_dict(d)

    def describe(self, spec: SweepSpec) -> str:
        """``"ReLU, Tanh × SGD · 5 folds · 25 epochs"``."""
        return (", ".join(map(hparams.label, spec.activations)) + " × "
                + ", ".join(map(hparams.label, spec.optimizers))
                + f" · {spec.folds} folds · {spec.epochs} epoch{'s' * (spec.epochs != 1)}")

    def parts(self, spec: SweepSpec) -> list[str]:
        return [jobs.part_name(p) for p in spec.pairs]

    def _configs(self, spec: SweepSpec, part: str) -> list[dict]:
        return cv.configurations(spec.grid_for(*jobs.part_pair(part)))

    def units(self, spec: SweepSpec, part: str) -> int:
        return len(self._configs(spec, part))

    def networks(self, spec: SweepSpec, part: str) -> int:
        return self.units(spec, part) * spec.folds

    def steps(self, spec: SweepSpec, part: str, job: jobs.Saved | None = None) -> int:
        if job is None:
            n = cv.fold_train_size(spec.n_train, spec.folds)
            return sum(spec.folds * pop.steps(n, cv.complete(c)["batch_size"], spec.epochs)
                       for c in self._configs(spec, part))
        return sum(t.cost for t in self.tasks(spec, part, job))

    def done_by_part(self, spec: SweepSpec, job: jobs.Saved) -> dict[str, int]:
        return {part: len(stored_rows(job, spec, jobs.part_pair(part)))
                for part in self.parts(spec)}

    def _todo(self, spec: SweepSpec, part: str, job: jobs.Saved) -> list[dict]:
        done = {cv.config_id(r) for r in stored_rows(job, spec, jobs.part_pair(part))}
        return [c for c in self._configs(spec, part) if cv.config_id(c) not in done]

    def _held(self, spec: SweepSpec, part: str, job: jobs.Saved, todo: list[dict]
              ) -> list[list[dict]]:
        """The configurations of ``part``'s checkpointed slices of this spec, each slice's
        all still to do."""
        ids = {cv.config_id(c) for c in todo}
        out = []
        for saved in job.checkpoints(part):
            args = saved["args"]
            if (isinstance(args, list) and len(args) == 3 and args[0] == spec.to_dict()
                    and isinstance(args[2], list) and args[2]
                    and all(isinstance(c, dict) for c in args[2])):
                configs = {cv.config_id(c) for c in args[2]}
                if configs <= ids and len(configs) == len(args[2]):
                    out.append(args[2])
                    ids -= configs
        return out

    def tasks(self, spec: SweepSpec, part: str, job: jobs.Saved) -> list[tasks.Task]:
        """The pair's configurations not saved yet, in slices of about
        ``tasks.POPULATION_SECONDS`` (``cv.slices``), each a ``score_slice`` call; a slice
        with a checkpoint is cut as it was and goes on from it."""
        pair = jobs.part_pair(part)
        todo = self._todo(spec, part, job)
        splits = cv.kfold(spec.n_train, spec.folds, spec.seed)
        # a checkpointed slice keeps its configurations as they were: the task's arguments
        held = self._held(spec, part, job, todo)
        taken = {cv.config_id(c) for configs in held for c in configs}
        rest = [c for c in todo if cv.config_id(c) not in taken]
        return job.resumed([
            tasks.Task(part, sum(cv.config_steps(c, splits, spec.epochs) for c in configs),
                       score_slice, (spec.to_dict(), pair, configs), units=len(configs))
            for configs in held + cv.slices(rest, splits, spec.epochs)])

    def save(self, spec: SweepSpec, part: str, job: jobs.Saved, rows: list[dict]) -> None:
        job.add({part: rows}, len(rows))

    def finish(self, spec: SweepSpec, job: jobs.Saved) -> None:
        """Each pair's rows as ``<pair>.csv`` and Table I as ``optimal.csv``."""
        result = load(job.folder, spec)
        job.folder.mkdir(parents=True, exist_ok=True)
        for pair, grid in result.results.items():
            grid.table.to_csv(job.folder / f"{jobs.part_name(pair)}.csv", index=False)
        if result.results:
            result.optimal.to_csv(job.folder / "optimal.csv")

    def read_folder(self, spec: SweepSpec, folder: Path) -> dict[str, list[dict]]:
        out = {}
        for pair in spec.pairs:
            part = jobs.part_name(pair)
            table, folds = read_pair(folder / f"{part}.csv", pair)
            out[part] = _of_spec(table, folds, f"{part}.csv", spec, pair)
        return out


def score_slice(spec: dict, pair: Pair, configs: list[dict],
                progress: pop.Progress | None = None, resume: dict | None = None,
                pause_after: float | None = None) -> list[dict]:
    """A sweep's task (``SweepKind.tasks``): the rows of some of a pair's configurations.
    Plain values in and out, so that it runs on a Dask worker as well as here; ``resume``
    and ``pause_after`` as in ``engine.fit.fit``."""
    s = SweepSpec.from_dict(spec)
    X, y = _training_data(s.n_train, s.data_seed)
    return cv.score(X, y, *pair, configs, cv.kfold(s.n_train, s.folds, s.seed), s.epochs,
                    s.seed, progress=progress, resume=resume, pause_after=pause_after)


@functools.lru_cache(maxsize=4)
def _training_data(n_train: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``training_data`` by value, drawn once per process for all of a sweep's tasks."""
    X, y, _, _ = data.train_test(DATASET, n_train, n_train, data_seed)
    return X, y


SWEEP = SweepKind()


def load(folder: str | Path, spec: SweepSpec | None = None) -> SweepResult:
    """A saved sweep's finished configurations, pairs in spec order.  A folder the store does
    not know is read from its files: imported once if it has a ``sweep.json``, else (an old
    command line's sweep, or CSV files a person brings) pair file by pair file."""
    folder = Path(folder)
    try:
        job, saved_spec = jobs.open_job(SWEEP, folder)
    except FileNotFoundError:
        return _load_files(folder)
    spec = spec or saved_spec
    results = {}
    for pair in spec.pairs:
        rows = stored_rows(job, spec, pair)
        if rows:
            keys = [k for k in hparams.grid_keys(pair[1]) if k in spec.grid_for(*pair)]
            results[pair] = cv.GridResult(cv.rank_table(pd.DataFrame(rows), keys, spec.folds),
                                          keys)
    return SweepResult(results)


def _load_files(folder: Path) -> SweepResult:
    results = {}
    for path in sorted(folder.glob("*-*.csv")):
        pair = jobs.part_pair(path.stem)
        if pair[0] not in hparams.ACTIVATIONS or pair[1] not in hparams.OPTIMIZERS:
            continue  # not a pair's file (optimal.csv is "optimal", no dash)
        table, folds = read_pair(path, pair)
        if table.empty:
            continue
        keys = [k for k in hparams.grid_keys(pair[1]) if k in table.columns]
        results[pair] = cv.GridResult(cv.rank_table(table, keys, folds), keys)
    return SweepResult(results)
