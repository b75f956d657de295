"""Saved cross-validation sweeps: settings on disk, a background runner, grid text, the work cap.

A *sweep* is ``minidl.cv.sweep`` over activation × optimizer pairs, with a grid
of hyperparameters per optimizer, run on the disk task's training set.  Each
sweep lives in a folder of its own under the results root (``results/sweeps``
in the repository, or ``$MINIDL_RESULTS_DIR``)::

    <root>/20250101-120000-3fa9c1/
        sweep.json            settings, creation time, status
        tanh-adam.csv …       finished configurations, appended by ``cv`` as each
                              population (one batch size) completes

Nothing is lost: a cancelled or interrupted sweep keeps its finished
configurations, and running it again with the same settings and folder
(``SweepJobs.start``) trains only the ones that are missing.

Cost: a *member* is one (configuration, fold) network; ``members × epochs``
is the work a sweep asks for, and a configurable cap (``$MINIDL_SWEEP_CAP``)
bounds it.  The full default grids (9 pairs, 5 folds) are 2610 members, 65 250
member-epochs at 25 epochs.

No Streamlit here: a page polls a ``SweepRunner`` for progress; the runner
never calls back into the UI.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import torch

from . import cv, data, playground
from . import population as pop

RESULTS_ENV = "MINIDL_RESULTS_DIR"
CAP_ENV = "MINIDL_SWEEP_CAP"
DEFAULT_CAP = 100_000  # member-epochs; the full default sweep at 25 epochs is 65 250
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "results" / "sweeps"
META = "sweep.json"
DATASET = "disk"

# sweep.json "status": created → running → finished | cancelled | failed.  A sweep whose
# file says "running" but that no runner of this process is running was interrupted
# (server restart); it resumes like a cancelled one.
RESUMABLE = ("created", "cancelled", "failed", "interrupted")

LABELS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "sgd": "SGD", "adam": "Adam",
          "rmsprop": "RMSProp", "lr": "learning rate", "batch_size": "batch size",
          "momentum": "momentum", "beta1": "β₁", "beta2": "β₂", "eps": "ε", "rho": "ρ",
          "gain": "Xavier gain"}


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
    text = os.environ.get(CAP_ENV, "").strip()
    if not text:
        return DEFAULT_CAP
    try:
        cap = int(float(text))
    except ValueError:
        raise ValueError(f"${CAP_ENV}={text!r} is not a number") from None
    if cap < 1:
        raise ValueError(f"${CAP_ENV} must be positive, got {text!r}")
    return cap


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
    for _, o in settings.pairs:
        grid = settings.grids[o]
        configs += math.prod(len(v) for v in grid.values())
        members += cv.estimate_members(grid, o, settings.folds)
        steps += cv.estimate_steps(grid, o, settings.folds, settings.epochs,
                                   settings.fold_train_size)
    return Estimate(configs, members, members * settings.epochs, steps,
                    work_cap() if cap is None else cap)


# ---------------------------------------------------------------- persistence

def results_root() -> Path:
    """Where sweeps are saved: ``$MINIDL_RESULTS_DIR`` or ``results/sweeps`` in the repository."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_ROOT)


def _write_meta(folder: Path, meta: dict) -> None:
    tmp = folder / f".{META}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(folder / META)  # atomic: a reader never sees half a file


def read_meta(folder: str | Path) -> dict:
    return json.loads((Path(folder) / META).read_text())


def update_meta(folder: str | Path, **changes) -> dict:
    folder = Path(folder)
    meta = {**read_meta(folder), **changes}
    _write_meta(folder, meta)
    return meta


def new_sweep(settings: Settings, root: str | Path | None = None) -> Path:
    """Create a sweep's folder with its ``sweep.json`` (status "created"); return the folder."""
    root = Path(root) if root is not None else results_root()
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now().astimezone()
    while True:
        folder = root / f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            continue
    _write_meta(folder, {**settings.to_dict(), "dataset": DATASET,
                         "created": now.isoformat(timespec="seconds"), "status": "created"})
    return folder


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
    status = meta.get("status", "created")
    if status in ("running", "queued") and folder.name not in active:
        status = "interrupted"
    finished = sum(len(t) for t in _stored_rows(folder, settings).values())
    total = estimate(settings, cap=0).configurations
    return SweepInfo(folder, settings, meta.get("created", ""), status, finished, total,
                     meta.get("error"))


def list_sweeps(root: str | Path | None = None, active: Collection[str] = ()) -> list[SweepInfo]:
    """Every saved sweep under ``root``, newest first; folders without a readable
    ``sweep.json`` are skipped."""
    root = Path(root) if root is not None else results_root()
    if not root.is_dir():
        return []
    out = []
    for folder in root.iterdir():
        if not (folder / META).is_file():
            continue
        try:
            out.append(info(folder, active))
        except (ValueError, KeyError, TypeError, OSError):
            continue
    return sorted(out, key=lambda s: (s.created, s.name), reverse=True)


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

@dataclass(frozen=True)
class Progress:
    """A runner's state at one moment, for a page to draw."""

    status: str            # queued, running, finished, cancelled, failed
    done: int              # optimizer steps done in this run
    total: int             # optimizer steps this run has to do (finished work excluded)
    elapsed: float         # seconds since this run started
    error: str | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far (None before any work is done)."""
        if self.done <= 0 or self.fraction <= 0:
            return None
        return self.elapsed * (1.0 - self.fraction) / self.fraction


def remaining_steps(folder: str | Path, settings: Settings) -> dict[tuple[str, str], int]:
    """Optimizer steps each pair still needs, finished configurations left out."""
    stored = _stored_rows(Path(folder), settings)
    per_config = settings.folds * settings.epochs
    n = settings.fold_train_size
    out = {}
    for a, o in settings.pairs:
        grid = settings.grids[o]
        steps = cv.estimate_steps(grid, o, settings.folds, settings.epochs, n)
        table = stored.get((a, o))
        if table is not None and "batch_size" in table:
            steps -= sum(per_config * math.ceil(n / int(b)) for b in table["batch_size"])
        out[(a, o)] = max(0, steps)
    return out


class SweepRunner:
    """Runs (or resumes) one saved sweep; ``run`` is meant for a worker thread.

    A page polls ``progress()`` and calls ``cancel()``; the runner writes its
    status into ``sweep.json`` as it goes, and ``cv.sweep`` appends finished
    configurations to the folder, so a cancel loses at most the populations
    in flight.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.settings = Settings.from_dict(read_meta(self.folder))
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._status, self._error = "queued", None
        self._done, self._total = 0, 0
        self._started: float | None = None
        self._ended: float | None = None
        self.future: Future | None = None  # set by SweepJobs.start
        update_meta(self.folder, status="queued")

    @property
    def name(self) -> str:
        return self.folder.name

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def active(self) -> bool:
        return self._status in ("queued", "running")

    def progress(self) -> Progress:
        with self._lock:
            if self._started is None:
                elapsed = 0.0
            else:
                elapsed = (self._ended or time.perf_counter()) - self._started
            return Progress(self._status, self._done, self._total, elapsed, self._error)

    def _set(self, status: str, error: str | None = None) -> None:
        with self._lock:
            self._status, self._error = status, error
            if status not in ("queued", "running"):
                self._ended = time.perf_counter()
        update_meta(self.folder, status=status, error=error,
                    updated=datetime.now().astimezone().isoformat(timespec="seconds"))

    def _report(self, done: int) -> bool:
        """Record ``done`` steps of this run; False asks ``cv.sweep`` to stop."""
        with self._lock:
            self._done = done
        return not self.cancel_event.is_set()

    def run(self) -> Progress:
        """Train every configuration not yet on disk; never raises (the status says how it ended)."""
        torch.set_num_threads(1)  # per process, but worker threads are entry points too
        if self.cancel_event.is_set():
            self._set("cancelled")
            return self.progress()
        s = self.settings
        try:
            remaining = remaining_steps(self.folder, s)
            with self._lock:
                self._total, self._started = sum(remaining.values()), time.perf_counter()
            self._set("running")
            X, y = training_data(s)
            offset = 0
            for a, o in s.pairs:
                if self.cancel_event.is_set():
                    raise pop.Cancelled()

                def report(done: int, _total: int, offset: int = offset) -> bool:
                    return self._report(offset + done)

                with torch.no_grad():
                    cv.sweep(X, y, [a], [o], grid=s.grids[o], folds=s.folds, epochs=s.epochs,
                             seed=s.seed, store=self.folder, progress=report)
                offset += remaining[(a, o)]
                with self._lock:
                    self._done = offset
        except pop.Cancelled:
            self._set("cancelled")
        except Exception as error:  # reported on the page, kept in sweep.json
            self._set("failed", f"{type(error).__name__}: {error}")
        else:
            self._set("finished")
        return self.progress()


class SweepJobs:
    """The runners of one process: one worker thread trains sweeps one after another.

    One worker because the machine has few cores and each population already
    keeps one busy; a second launch waits its turn (status "queued").
    """

    def __init__(self, workers: int = 1):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minidl-sweep")
        self._runners: dict[str, SweepRunner] = {}
        self._lock = threading.Lock()

    def start(self, folder: str | Path) -> SweepRunner:
        """Run (or resume) the sweep in ``folder``; an already active runner is returned as is."""
        folder = Path(folder)
        with self._lock:
            runner = self._runners.get(folder.name)
            if runner is not None and runner.active:
                return runner
            runner = self._runners[folder.name] = SweepRunner(folder)
            runner.future = self.executor.submit(runner.run)
        return runner

    def get(self, name: str) -> SweepRunner | None:
        with self._lock:
            return self._runners.get(name)

    def active(self) -> set[str]:
        """Names of the sweeps queued or running now."""
        with self._lock:
            return {name for name, r in self._runners.items() if r.active}

    def shutdown(self, cancel: bool = True) -> None:
        if cancel:
            for runner in list(self._runners.values()):
                runner.cancel()
        self.executor.shutdown(wait=True)


def format_seconds(seconds: float | None) -> str:
    """``75.2`` → ``"1 min 15 s"``; None → ``"…"``."""
    if seconds is None or not math.isfinite(seconds):
        return "…"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
