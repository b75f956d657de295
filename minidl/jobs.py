"""Saved jobs: one mechanism for sweeps (``minidl.sweeps``) and studies (``minidl.studies``).

A *job* is long training work saved in a folder of its own: a meta file (its
*spec* — what it trains — plus creation time and status) and the results it
appends as its *parts* finish.  A ``Kind`` says what one kind of job trains;
everything else is written once, here:

- ``create`` / ``info`` / ``list_jobs``: folders under ``results_root()/<kind.folder>``,
  named after their creation time; status created → queued → running →
  finished | cancelled | failed; a job whose file says queued or running but
  that no runner of this process works on reads as "interrupted";
- ``estimate``: a job's size in optimizer steps (``population.steps``, the one
  cost function) against a cap (``$<kind.cap_env>``);
- ``Runner``: trains what is still missing of each part (so a rerun *resumes*),
  counts this run's own steps for a progress bar and ETA, and stops when
  ``cancel()`` is called; ``Jobs``: the runners of a process and their worker
  thread.

No Streamlit here: a page polls ``Runner.progress()`` and is never called back.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import population as pop

RESULTS_ENV = "MINIDL_RESULTS_DIR"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "results"
ACTIVE = ("queued", "running")
RESUMABLE = ("created", "cancelled", "failed", "interrupted")

Report = Callable[[int, int], "bool | None"]   # a training's progress(done, total); False: stop


def results_root() -> Path:
    """Where jobs are saved: ``$MINIDL_RESULTS_DIR`` or ``results/`` in the repository."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_ROOT)


class Kind:
    """What one kind of job trains; a subclass fills in these names and methods.

    A spec is any object with ``to_dict()``; ``spec_from_dict`` reads it back
    (raising ``ValueError`` on a bad one).  A job's parts are named by strings
    (e.g. ``"tanh-sgd"``); each is trained by ``train``, which must save its
    results as it goes and skip what is already saved.
    """

    name: str          # "sweep"
    folder: str        # subfolder of the results root: "sweeps"
    meta_name: str     # "sweep.json"
    unit: str          # what a part is made of: "configuration", "run"
    cap_env: str       # environment variable bounding a job's optimizer steps
    default_cap: int

    def spec_from_dict(self, d: Mapping) -> Any:
        raise NotImplementedError

    def parts(self, spec) -> list[str]:
        raise NotImplementedError

    def units(self, spec, part: str) -> int:
        """How many units (configurations, runs) ``part`` has."""
        raise NotImplementedError

    def networks(self, spec, part: str) -> int:
        """Networks ``part`` trains (a configuration is trained once per fold)."""
        return self.units(spec, part)

    def steps(self, spec, part: str, folder: Path | None = None) -> int:
        """Optimizer steps ``part`` still needs (all of them without a ``folder``)."""
        raise NotImplementedError

    def units_done(self, spec, part: str, folder: Path) -> int:
        raise NotImplementedError

    def train(self, spec, part: str, folder: Path, report: Report) -> None:
        raise NotImplementedError

    def finish(self, spec, folder: Path) -> None:
        """Called once the parts stop (finished, cancelled or failed)."""

    def describe(self, spec) -> str:
        """What a job of ``spec`` trains, in a few words (for lists and selectors)."""
        raise NotImplementedError

    # ------------------------------------------------ derived, written once

    @property
    def meta(self) -> MetaFile:
        return MetaFile(self.meta_name)

    def root(self) -> Path:
        return results_root() / self.folder

    def work_cap(self) -> int:
        """The most optimizer steps a job may ask for: ``$<cap_env>`` or ``default_cap``."""
        text = os.environ.get(self.cap_env, "").strip()
        if not text:
            return self.default_cap
        try:
            cap = float(text)
        except ValueError:
            raise ValueError(f"${self.cap_env}={text!r} is not a number") from None
        if not (math.isfinite(cap) and cap >= 1):
            raise ValueError(f"${self.cap_env} must be a finite number >= 1, got {text!r}")
        return int(cap)


def part_name(pair: tuple[str, str]) -> str:
    """``("tanh", "sgd")`` → ``"tanh-sgd"``: a pair's part of a job (and its file name)."""
    return f"{pair[0]}-{pair[1]}"


def part_pair(part: str) -> tuple[str, str]:
    activation, optimizer = part.split("-", 1)
    return activation, optimizer


# ---------------------------------------------------------------- result rows

def read_rows(path: Path, required: str) -> pd.DataFrame:
    """A job's saved rows; a row without ``required`` (a last line still being written) is
    left out, and a missing or unreadable file reads as no rows."""
    try:
        table = pd.read_csv(path, on_bad_lines="skip")
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()
    return table.dropna(subset=[required]) if required in table else pd.DataFrame()


_APPEND_LOCK = threading.Lock()  # parts of one job run on threads and share result files


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append rows to a CSV under the header already written (a new column is refused)."""
    if not rows:
        return
    with _APPEND_LOCK:
        _append_rows(path, rows)


def _append_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if path.exists() and path.stat().st_size:
        header = list(pd.read_csv(path, nrows=0).columns)
        extra = set(frame.columns) - set(header)
        if extra:
            raise ValueError(f"{path} was written with other columns (new: {sorted(extra)}); "
                             "use another folder")
        frame.reindex(columns=header).to_csv(path, mode="a", header=False, index=False)
    else:
        frame.to_csv(path, index=False)


# ---------------------------------------------------------------- meta files

@dataclass(frozen=True)
class MetaFile:
    """The JSON file called ``name`` that holds a saved job's spec and status."""

    name: str

    def read(self, folder: str | Path) -> dict:
        meta = json.loads((Path(folder) / self.name).read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"{self.name} holds {type(meta).__name__}, not an object")
        return meta

    def write(self, folder: str | Path, meta: dict) -> None:
        tmp = Path(folder) / f".{self.name}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(Path(folder) / self.name)  # atomic: a reader never sees half a file

    def update(self, folder: str | Path, **changes) -> dict:
        meta = {**self.read(folder), **changes}
        self.write(folder, meta)
        return meta

    def create(self, root: Path, meta: dict, folder: Path | None = None) -> Path:
        """Write ``meta`` with its creation time and status "created" into ``folder``, or into
        a new ``<root>/<created>-<6 hex digits>``; returns the folder."""
        now = datetime.now().astimezone()
        if folder is None:
            root.mkdir(parents=True, exist_ok=True)
            while True:
                folder = root / f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
        else:
            folder.mkdir(parents=True, exist_ok=True)
        self.write(folder, {**meta, "created": now.isoformat(timespec="seconds"),
                            "status": "created"})
        return folder


def status(meta: dict, folder: Path, active: Collection[str]) -> str:
    """The saved status, or "interrupted" where it says queued/running but ``folder``'s name
    is not among the ``active`` runners' names."""
    saved = meta.get("status", "created")
    return "interrupted" if saved in ACTIVE and folder.name not in active else saved


# ---------------------------------------------------------------- saved jobs

def create(kind: Kind, spec, folder: str | Path | None = None) -> Path:
    """Save a new job of ``spec`` (status "created") in ``folder`` or a new folder under
    ``kind.root()``; returns the folder."""
    return kind.meta.create(kind.root(), spec.to_dict(),
                            None if folder is None else Path(folder))


def open_or_create(kind: Kind, spec, folder: str | Path) -> Path:
    """``folder`` as the job of ``spec``: created if it holds no job, reused (to resume) if
    it holds the same spec; ``ValueError`` if it holds another job."""
    folder = Path(folder)
    if (folder / kind.meta_name).is_file():
        saved = kind.spec_from_dict(kind.meta.read(folder))
        if saved.to_dict() != spec.to_dict():
            raise ValueError(f"{folder} holds another {kind.name}; give a new folder, or the "
                             "same settings to resume it")
        return folder
    return create(kind, spec, folder)


@dataclass(frozen=True)
class Estimate:
    """The size of a job before it runs."""

    parts: int
    units: int         # configurations or runs, summed over parts
    networks: int      # networks trained
    steps: int         # optimizer steps summed over networks: what the cap bounds
    cap: int
    unit: str

    @property
    def allowed(self) -> bool:
        return self.steps <= self.cap

    def describe(self) -> str:
        networks = "" if self.networks == self.units else f", {self.networks:,} networks"
        return (f"{self.units:,} {self.unit}{'s' * (self.units != 1)}{networks}, "
                f"{self.steps:,} optimizer steps (cap {self.cap:,})")


def estimate(kind: Kind, spec, cap: int | None = None, folder: Path | None = None
             ) -> Estimate:
    """The size of ``spec``'s work, or with ``folder`` of the work it still has to do
    (what a resume asks for); ``cap`` defaults to ``kind.work_cap()``."""
    parts = kind.parts(spec)
    return Estimate(len(parts), sum(kind.units(spec, p) for p in parts),
                    sum(kind.networks(spec, p) for p in parts),
                    sum(kind.steps(spec, p, folder) for p in parts),
                    kind.work_cap() if cap is None else cap, kind.unit)


@dataclass(frozen=True)
class JobInfo:
    """One saved job as a list shows it."""

    folder: Path
    spec: Any
    created: str
    status: str        # created, queued, running, finished, cancelled, failed, interrupted
    done: int          # units on disk
    total: int         # units in the spec
    error: str | None = None

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def created_text(self) -> str:
        return self.created.replace("T", " ")[:16]


def info(kind: Kind, folder: str | Path, active: Collection[str] = ()) -> JobInfo:
    """A job's spec, status and progress in units."""
    folder = Path(folder)
    meta = kind.meta.read(folder)
    spec = kind.spec_from_dict(meta)
    parts = kind.parts(spec)
    return JobInfo(folder, spec, str(meta.get("created", "")), status(meta, folder, active),
                   sum(kind.units_done(spec, p, folder) for p in parts),
                   sum(kind.units(spec, p) for p in parts), meta.get("error"))


def list_jobs(kind: Kind, root: str | Path | None = None, active: Collection[str] = ()
              ) -> list[JobInfo]:
    """Every saved job of ``kind`` under ``root`` (default ``kind.root()``), newest first;
    folders without a readable meta file are skipped."""
    root = Path(root) if root is not None else kind.root()
    if not root.is_dir():
        return []
    out = []
    for folder in root.iterdir():
        if not (folder / kind.meta_name).is_file():
            continue
        try:
            out.append(info(kind, folder, active))
        except (ValueError, KeyError, TypeError, OSError):
            continue
    return sorted(out, key=lambda j: (j.created, j.name), reverse=True)


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

    def describe(self) -> str:
        """``"1,200 of 4,000 optimizer steps (30%) · 12 s elapsed · about 28 s left"``."""
        return (f"{self.done:,} of {self.total:,} optimizer steps ({self.fraction:.0%}) · "
                f"{format_seconds(self.elapsed)} elapsed · about {format_seconds(self.eta)} left")


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


class Runner:
    """Runs (or resumes) one saved job; ``run`` is meant for a worker thread.

    Each part trains only what is missing on disk; ``workers`` parts train at
    a time on threads (torch releases the GIL in its kernels).  A page polls
    ``progress()`` and calls ``cancel()``; the status goes into the meta file
    as it changes.
    """

    def __init__(self, kind: Kind, folder: str | Path, workers: int = 1):
        self.kind, self.folder, self.workers = kind, Path(folder), workers
        self.spec = kind.spec_from_dict(kind.meta.read(self.folder))
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._status, self._error = "queued", None
        self._done, self._total = 0, 0
        self._started: float | None = None
        self._ended: float | None = None
        self.future: Future | None = None  # set by Jobs.start
        kind.meta.update(self.folder, status="queued")

    @property
    def name(self) -> str:
        return self.folder.name

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def active(self) -> bool:
        return self._status in ACTIVE

    def progress(self) -> Progress:
        with self._lock:
            if self._started is None:
                elapsed = 0.0
            else:
                elapsed = (self._ended or time.perf_counter()) - self._started
            return Progress(self._status, self._done, self._total, elapsed, self._error)

    def _set(self, status: str, error: str | None = None) -> None:
        # the file first: once a page sees the runner inactive, it reads the final status
        updated = datetime.now().astimezone().isoformat(timespec="seconds")
        self.kind.meta.update(self.folder, status=status, error=error, updated=updated)
        with self._lock:
            self._status, self._error = status, error
            if status not in ACTIVE:
                self._ended = time.perf_counter()

    def _report(self, done: int, _total: int) -> bool:
        """Record ``done`` steps of this run; False asks the training to stop."""
        with self._lock:
            self._done = done
        return not self.cancel_event.is_set()

    def run(self) -> Progress:
        """Train every part's missing work; never raises (the status says how it ended)."""
        torch.set_num_threads(1)  # per process, but worker threads are entry points too
        if self.cancel_event.is_set():
            self._set("cancelled")
            return self.progress()
        status, error = "finished", None
        try:
            kind, spec = self.kind, self.spec
            costs = {p: kind.steps(spec, p, self.folder) for p in kind.parts(spec)}
            todo = [p for p, steps in costs.items() if steps > 0]
            with self._lock:
                self._total, self._started = sum(costs.values()), time.perf_counter()
            self._set("running")

            def task(part: str):
                def train(report: Report) -> None:
                    with torch.no_grad():  # grad mode is per thread
                        kind.train(spec, part, self.folder, report)
                return train

            pop.run_parallel([task(p) for p in todo], [costs[p] for p in todo], self._report,
                             self.workers)
            # a cancel that came during the last epoch could not stop it: all is done then
            if self.cancel_event.is_set() and any(kind.steps(spec, p, self.folder) > 0
                                                  for p in todo):
                raise pop.Cancelled()
        except pop.Cancelled:
            status = "cancelled"
        except Exception as e:  # shown on the page, kept in the meta file
            status, error = "failed", f"{type(e).__name__}: {e}"
        try:
            self.kind.finish(self.spec, self.folder)
        except Exception as e:
            status, error = "failed", f"saving the results: {type(e).__name__}: {e}"
        try:
            self._set(status, error)
        except Exception as e:  # e.g. the folder was deleted: still end the job in memory
            with self._lock:
                self._status, self._error = "failed", f"{type(e).__name__}: {e}"
                self._ended = time.perf_counter()
        return self.progress()


class Jobs:
    """The runners of one kind in one process: one worker thread trains jobs one after
    another, a later start waits its turn (status "queued").

    One worker because the machine has few cores and each population already keeps
    one busy; pass a shared ``executor`` to queue jobs behind other long work.
    """

    def __init__(self, kind: Kind, workers: int = 1, executor: Executor | None = None):
        self.kind = kind
        self.executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"minidl-{kind.name}")
        self._runners: dict[str, Runner] = {}
        self._lock = threading.Lock()

    def start(self, folder: str | Path) -> Runner:
        """Run (or resume) the job in ``folder``; an already active runner is returned as is."""
        folder = Path(folder)
        with self._lock:
            runner = self._runners.get(folder.name)
            if runner is not None and runner.active:
                return runner
            runner = self._runners[folder.name] = Runner(self.kind, folder)
            runner.future = self.executor.submit(runner.run)
        return runner

    def get(self, name: str) -> Runner | None:
        with self._lock:
            return self._runners.get(name)

    def active(self) -> set[str]:
        """Names of the jobs queued or running now."""
        with self._lock:
            return {name for name, r in self._runners.items() if r.active}

    def shutdown(self, cancel: bool = True) -> None:
        if cancel:
            for runner in list(self._runners.values()):
                runner.cancel()
        self.executor.shutdown(wait=True)
