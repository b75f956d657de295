"""Saved cross-validation sweeps: settings on disk, a background runner, grid text, the work cap.

A *sweep* is ``minidl.cv.sweep`` over activation × optimizer pairs, with a grid
of hyperparameters per optimizer (plus the activation's extras,
``cv.ACTIVATION_GRIDS``: Sigmoid also tries init gain 1 and 16), run on the disk
task's training set.  Each sweep lives in a folder of its own under the results
root (``minidl.jobs.results_root``)::

    <root>/20250101-120000-3fa9c1/
        sweep.json            settings, creation time, status
        tanh-adam.csv …       finished configurations, appended by ``cv`` as each
                              population (one batch size) completes

Nothing is lost: a cancelled or interrupted sweep keeps its finished
configurations, and running it again with the same settings and folder
(``SweepJobs.start``) trains only the ones that are missing.

Cost: a *member* is one (configuration, fold) network; ``members × epochs``
is the work a sweep asks for, and a configurable cap (``$MINIDL_SWEEP_CAP``)
bounds it.  The full default grids (9 pairs, 5 folds) are 3480 members, 87 000
member-epochs at 25 epochs.

No Streamlit here: a page polls a ``SweepRunner`` (a ``minidl.jobs.Runner``)
for progress; the runner never calls back into the UI.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import torch

from . import cv, data, jobs, labels, playground
from .jobs import results_root

CAP_ENV = "MINIDL_SWEEP_CAP"
DEFAULT_CAP = 100_000  # member-epochs; the full default sweep at 25 epochs is 87 000
META = jobs.MetaFile("sweep.json")
DATASET = "disk"

# A sweep that stopped early (or never started) resumes where it stopped (``jobs.status``).
RESUMABLE = ("created", "cancelled", "failed", "interrupted")

LABELS = labels.NAMES


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class Settings:
    """What a sweep trains: pairs, a grid per optimizer, folds, epochs and seeds.

    ``seed`` seeds the fold split and every member's initial weights and batch
    order (``cv.grid_search``); ``data_seed`` and ``n_train`` pick the training
    set: the first ``n_train`` points of ``data.train_test("disk", n_train,
    n_train, data_seed)`` — the Playground's training set for the same seed.
    """

    activations: tuple[str, ...] = cv.ACTIVATIONS
    optimizers: tuple[str, ...] = cv.OPTIMIZERS
    grids: Mapping[str, Mapping[str, list]] = field(
        default_factory=lambda: {o: dict(g) for o, g in cv.DEFAULT_GRIDS.items()})
    folds: int = 5
    epochs: int = 25
    seed: int = 0
    data_seed: int = 0
    n_train: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "activations", tuple(a.lower() for a in self.activations))
        object.__setattr__(self, "optimizers", tuple(o.lower() for o in self.optimizers))
        # keep only the selected optimizers' grids, each cleaned by cv.validate_grid
        self.validate()
        grids = {o: cv.validate_grid(dict(self.grids[o]), o) for o in self.optimizers}
        object.__setattr__(self, "grids", grids)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if not self.activations:
            raise ValueError("choose at least one activation")
        if not self.optimizers:
            raise ValueError("choose at least one optimizer")
        for a in self.activations:
            if a not in cv.ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r}; expected some of {cv.ACTIVATIONS}")
        for o in self.optimizers:
            if o not in cv.OPTIMIZERS:
                raise ValueError(f"unknown optimizer {o!r}; expected some of {cv.OPTIMIZERS}")
            if o not in self.grids:
                raise ValueError(f"no grid given for {o}")
        for name in ("folds", "epochs", "seed", "data_seed", "n_train"):
            v = getattr(self, name)
            low = {"folds": 2, "epochs": 1, "n_train": 2}.get(name, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.folds > self.n_train:
            raise ValueError(f"folds ({self.folds}) cannot exceed the training points "
                             f"({self.n_train})")

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(a, o) for a in self.activations for o in self.optimizers]

    def grid_for(self, activation: str, optimizer: str) -> dict[str, list]:
        """One pair's grid: the activation's extras (``cv.ACTIVATION_GRIDS``) updated with
        the optimizer's grid (its values win)."""
        return {**cv.ACTIVATION_GRIDS.get(activation, {}), **self.grids[optimizer]}

    @property
    def fold_train_size(self) -> int:
        """Training rows of one fold's members (as ``cv.sweep`` counts them)."""
        return self.n_train - self.n_train // self.folds

    def to_dict(self) -> dict:
        d = asdict(self)
        d["activations"], d["optimizers"] = list(self.activations), list(self.optimizers)
        d["grids"] = {o: {k: list(v) for k, v in g.items()} for o, g in self.grids.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Settings:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


def training_data(settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows a sweep cross-validates on (the Playground's training set)."""
    X, y, _, _ = data.train_test(DATASET, settings.n_train, settings.n_train, settings.data_seed)
    return X, y


# ---------------------------------------------------------------- grid text

def format_values(values: Iterable) -> str:
    """``[0.0001, 0.001]`` → ``"0.0001, 0.001"`` (what ``parse_values`` reads back)."""
    return ", ".join(playground.format_value(v) for v in values)


def extras_note(activations: Iterable[str]) -> str:
    """What the chosen activations add to their pairs' grids (``cv.ACTIVATION_GRIDS``), in
    words: ``"Sigmoid also tries Xavier gain 1, 16."``; ``""`` when nothing."""
    return " ".join(
        f"{LABELS[a]} also tries "
        + "; ".join(f"{LABELS.get(k, k)} {', '.join(f'{x:g}' for x in v)}"
                    for k, v in extras.items()) + "."
        for a, extras in cv.ACTIVATION_GRIDS.items() if a in activations)


def parse_values(key: str, text: str, optimizer: str | None = None) -> list:
    """Comma-separated text → the list of values of one hyperparameter.

    Batch sizes become ints, everything else floats; duplicates are dropped
    (first one kept).  Raises ``ValueError`` with a message naming the
    hyperparameter for an empty list, a non-number or a value out of range
    (``cv.validate_grid``'s ranges: lr, ε > 0; momentum, β, ρ in [0, 1)).
    """
    where = f"{LABELS.get(optimizer, optimizer)} {LABELS.get(key, key)}" if optimizer \
        else LABELS.get(key, key)
    tokens = [t.strip() for t in text.replace(";", ",").split(",")]
    tokens = [t for t in tokens if t]
    if not tokens:
        raise ValueError(f"{where}: the list is empty — give at least one value")
    values: list = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise ValueError(f"{where}: {token!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: {token!r} is not a finite number")
        if key == "batch_size":
            if not value.is_integer() or value < 1:
                raise ValueError(f"{where}: {token!r} is not a positive whole number")
            value = int(value)
        try:
            cv.validate_grid({key: [value]})
        except ValueError as error:
            raise ValueError(f"{where}: {_range_message(key, token, error)}") from None
        if value not in values:
            values.append(value)
    return values


def _range_message(key: str, token: str, error: ValueError) -> str:
    text = str(error)
    expected = text[text.find("(expected") + 1:-1] if "(expected" in text else text
    if key in ("lr", "eps", "gain"):
        return f"{token} is not allowed: it must be greater than 0"
    return f"{token} is out of range ({expected})"


def parse_grid(texts: Mapping[str, str], optimizer: str) -> dict[str, list]:
    """``{key: "v1, v2"}`` of one optimizer → its grid; raises ``ValueError`` on the first bad list."""
    return {key: parse_values(key, text, optimizer) for key, text in texts.items()}


# ---------------------------------------------------------------- the work cap

def work_cap() -> int:
    """The largest ``members × epochs`` a sweep may ask for: ``$MINIDL_SWEEP_CAP`` or 100 000."""
    return jobs.work_cap(CAP_ENV, DEFAULT_CAP)


@dataclass(frozen=True)
class Estimate:
    """The size of a sweep before it runs."""

    configurations: int    # grid points, summed over pairs
    members: int           # configurations × folds: networks trained
    member_epochs: int     # members × epochs: what the cap bounds
    steps: int             # optimizer steps summed over members
    cap: int

    @property
    def allowed(self) -> bool:
        return self.member_epochs <= self.cap

    def describe(self) -> str:
        return (f"{self.configurations:,} configurations × folds = {self.members:,} networks; "
                f"× epochs = {self.member_epochs:,} member-epochs "
                f"({self.steps:,} optimizer steps); cap {self.cap:,} member-epochs")


def estimate(settings: Settings, cap: int | None = None) -> Estimate:
    """Members, member-epochs and optimizer steps of ``settings``, and whether the cap allows it."""
    configs = members = steps = 0
    for a, o in settings.pairs:
        grid = settings.grid_for(a, o)
        configs += math.prod(len(v) for v in grid.values())
        members += cv.estimate_members(grid, o, settings.folds)
        steps += cv.estimate_steps(grid, o, settings.folds, settings.epochs,
                                   settings.fold_train_size)
    return Estimate(configs, members, members * settings.epochs, steps,
                    work_cap() if cap is None else cap)


# ---------------------------------------------------------------- persistence

read_meta, update_meta = META.read, META.update


def new_sweep(settings: Settings, root: str | Path | None = None) -> Path:
    """Create a sweep's folder with its ``sweep.json`` (status "created"); return the folder."""
    return META.create(Path(root) if root is not None else results_root(),
                       {**settings.to_dict(), "dataset": DATASET})


@dataclass(frozen=True)
class SweepInfo:
    """One saved sweep as the list shows it."""

    folder: Path
    settings: Settings
    created: str
    status: str            # created, running, finished, cancelled, failed, interrupted
    finished: int          # configurations on disk
    total: int             # configurations in the grid
    error: str | None = None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    def label(self) -> str:
        """A name for a selector that never changes (status and progress do; a selector
        keyed on a changing label would lose its selection)."""
        s = self.settings
        pairs = f"{len(s.activations)} activation{'s' * (len(s.activations) > 1)} × " \
                f"{len(s.optimizers)} optimizer{'s' * (len(s.optimizers) > 1)}"
        return (f"{self.created.replace('T', ' ')[:19]} · {pairs}, {s.folds} folds, "
                f"{s.epochs} epochs · {self.name.rsplit('-', 1)[-1]}")


def _stored_rows(folder: Path, settings: Settings) -> dict[tuple[str, str], pd.DataFrame]:
    """Each pair's finished rows for these epochs and seed (a CSV being appended to is
    read up to its last complete line)."""
    rows = {}
    for a, o in settings.pairs:
        path = folder / f"{a}-{o}.csv"
        if not path.exists():
            continue
        try:
            table = pd.read_csv(path, on_bad_lines="skip")
        except (pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        if {"epochs", "seed"} <= set(table.columns):
            table = table[(table["epochs"] == settings.epochs) & (table["seed"] == settings.seed)]
        rows[(a, o)] = table
    return rows


def info(folder: str | Path, active: Collection[str] = ()) -> SweepInfo:
    """A sweep's settings, status and progress in configurations.

    ``active``: names of the sweeps a runner is working on now; a sweep whose
    file says "running" but is not among them was interrupted.
    """
    folder = Path(folder)
    meta = read_meta(folder)
    settings = Settings.from_dict(meta)
    status = jobs.status(meta, folder, active)
    finished = sum(len(t) for t in _stored_rows(folder, settings).values())
    total = estimate(settings, cap=0).configurations
    return SweepInfo(folder, settings, meta.get("created", ""), status, finished, total,
                     meta.get("error"))


def list_sweeps(root: str | Path | None = None, active: Collection[str] = ()) -> list[SweepInfo]:
    """Every saved sweep under ``root``, newest first; folders without a readable
    ``sweep.json`` are skipped."""
    return META.list(Path(root) if root is not None else results_root(),
                     lambda folder: info(folder, active))


def overview(saved: Iterable[SweepInfo]) -> pd.DataFrame:
    """One row per saved sweep: when, what, how far."""
    return pd.DataFrame([{
        "created": s.created.replace("T", " ")[:19], "sweep": s.name,
        "activations": ", ".join(s.settings.activations),
        "optimizers": ", ".join(s.settings.optimizers), "folds": s.settings.folds,
        "epochs": s.settings.epochs, "seed": s.settings.seed,
        "status": s.status, "configurations": f"{s.finished} / {s.total}"} for s in saved])


def load(folder: str | Path, active: Collection[str] = ()) -> tuple[SweepInfo, cv.SweepResult]:
    """A sweep's info and its finished configurations (``cv.load_sweep``), pairs in settings order."""
    sweep = info(folder, active)
    stored = cv.load_sweep(folder)
    results = {p: stored.results[p] for p in sweep.settings.pairs
               if p in stored.results and not stored.results[p].table.empty}
    return sweep, cv.SweepResult(results)


# ---------------------------------------------------------------- links and tables

def playground_query(row: Mapping, settings: Settings) -> dict[str, str]:
    """Query parameters that open one result row's settings in the Playground."""
    values = playground.defaults()
    values.update(activation=row["activation"], optimizer=row["optimizer"],
                  epochs=settings.epochs, data_seed=settings.data_seed,
                  n_train=settings.n_train, dataset=DATASET)
    for key in (*cv.OPTIMIZER_KEYS[row["optimizer"]], "gain", "init"):
        value = row.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        values[key] = int(value) if key == "batch_size" else (
            value if key == "init" else float(value))
    return playground.to_query(values)


def playground_link(row: Mapping, settings: Settings, page: str = "./") -> str:
    """A relative link to the Playground with ``row``'s settings: ``<page>?activation=relu&…``.

    ``page``: the Playground's URL path relative to another page of the app —
    ``"./"`` while it is the app's default page (served at the root; ``/playground``
    itself is "Page not found").
    """
    return f"{page}?{urlencode(playground_query(row, settings))}"


def results_table(result: cv.SweepResult, settings: Settings, page: str = "./") -> pd.DataFrame:
    """All rows of a sweep, best first within each pair, with a ``playground`` link column."""
    if not result.results:
        return pd.DataFrame()
    table = result.table
    table.insert(0, "playground", [playground_link(r, settings, page)
                                   for r in table.to_dict("records")])
    return table


# ---------------------------------------------------------------- running

def remaining_steps(folder: str | Path, settings: Settings) -> dict[tuple[str, str], int]:
    """Optimizer steps each pair still needs, finished configurations left out."""
    stored = _stored_rows(Path(folder), settings)
    per_config = settings.folds * settings.epochs
    n = settings.fold_train_size
    out = {}
    for a, o in settings.pairs:
        steps = cv.estimate_steps(settings.grid_for(a, o), o, settings.folds, settings.epochs, n)
        table = stored.get((a, o))
        if table is not None and "batch_size" in table:
            steps -= sum(per_config * math.ceil(n / int(b)) for b in table["batch_size"])
        out[(a, o)] = max(0, steps)
    return out


class SweepRunner(jobs.Runner):
    """Runs (or resumes) one saved sweep, one pair after another (``jobs.Runner``).

    ``cv.sweep`` appends finished configurations to the folder, so a cancel
    loses at most the populations in flight; progress counts only the steps
    this run has to do (``remaining_steps``).
    """

    meta = META

    def __init__(self, folder: str | Path):
        self.settings = Settings.from_dict(read_meta(folder))
        super().__init__(folder)

    def parts(self) -> list[jobs.Part]:
        s = self.settings
        X, y = training_data(s)

        def train(report: jobs.Report, a: str, o: str, steps: int) -> None:
            # cv counts configurations already on disk as done; this run counts the rest
            def progress(done: int, total: int) -> bool:
                return report(max(0, steps - (total - done)), total)
            cv.sweep(X, y, [a], [o], grid=s.grid_for(a, o), folds=s.folds, epochs=s.epochs,
                     seed=s.seed, store=self.folder, progress=progress)

        return [(steps, partial(train, a=a, o=o, steps=steps))
                for (a, o), steps in remaining_steps(self.folder, s).items()]


class SweepJobs(jobs.Jobs[SweepRunner]):
    """The process's sweep runners and their one worker thread (``jobs.Jobs``)."""

    runner = SweepRunner
