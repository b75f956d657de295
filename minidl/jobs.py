"""Saved jobs (``minidl.sweeps``, ``minidl.studies``): a folder each, and a background runner.

A job lives in a folder named after its creation time, under ``$MINIDL_RESULTS_DIR``
or ``results/sweeps``, with a JSON file of settings and status (``MetaFile``):
created → queued → running → finished | cancelled | failed.  A job whose file says
queued or running but that no runner of this process works on was interrupted.

A ``Runner`` trains a job's parts one after another on the worker thread of a
``Jobs``, counting optimizer steps for a progress bar and ETA; ``cancel()`` sets
an event that the training's progress callback answers with False.  No
Streamlit here: a page polls ``Runner.progress()`` and is never called back.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch

from . import population as pop

RESULTS_ENV = "MINIDL_RESULTS_DIR"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "results" / "sweeps"
ACTIVE = ("queued", "running")


def results_root() -> Path:
    """Where jobs are saved: ``$MINIDL_RESULTS_DIR`` or ``results/sweeps`` in the repository."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_ROOT)


def work_cap(env: str, default: int) -> int:
    """A job's largest allowed size: the number in ``$<env>``, or ``default`` when unset."""
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        cap = int(float(text))
    except ValueError:
        raise ValueError(f"${env}={text!r} is not a number") from None
    if cap < 1:
        raise ValueError(f"${env} must be positive, got {text!r}")
    return cap


# ---------------------------------------------------------------- saved folders

@dataclass(frozen=True)
class MetaFile:
    """The JSON file called ``name`` that holds a saved job's settings and status."""

    name: str

    def read(self, folder: str | Path) -> dict:
        return json.loads((Path(folder) / self.name).read_text())

    def write(self, folder: str | Path, meta: dict) -> None:
        tmp = Path(folder) / f".{self.name}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(Path(folder) / self.name)  # atomic: a reader never sees half a file

    def update(self, folder: str | Path, **changes) -> dict:
        meta = {**self.read(folder), **changes}
        self.write(folder, meta)
        return meta

    def create(self, root: Path, meta: dict) -> Path:
        """A new folder ``<root>/<created>-<6 hex digits>`` with ``meta``, its creation time
        and status "created"; returns the folder."""
        root.mkdir(parents=True, exist_ok=True)
        now = datetime.now().astimezone()
        while True:
            folder = root / f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        self.write(folder, {**meta, "created": now.isoformat(timespec="seconds"),
                            "status": "created"})
        return folder

    def list(self, root: Path, info: Callable[[Path], Any]) -> list:
        """``info(folder)`` of every saved job under ``root``, newest first (by ``created``,
        then ``name``); folders without this file, or whose ``info`` fails, are skipped."""
        if not root.is_dir():
            return []
        out = []
        for folder in root.iterdir():
            if not (folder / self.name).is_file():
                continue
            try:
                out.append(info(folder))
            except (ValueError, KeyError, TypeError, OSError):
                continue
        return sorted(out, key=lambda s: (s.created, s.name), reverse=True)


def status(meta: dict, folder: Path, active: Collection[str]) -> str:
    """The saved status, or "interrupted" where it says queued/running but ``folder``'s name
    is not among the ``active`` runners' names."""
    saved = meta.get("status", "created")
    return "interrupted" if saved in ACTIVE and folder.name not in active else saved


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


Report = Callable[[int, int], bool]   # a training's progress(done, total); False: stop
Part = tuple[int, Callable[[Report], object]]  # (optimizer steps, train(report))


class Runner:
    """Runs (or resumes) one saved job; ``run`` is meant for a worker thread.

    A subclass names its ``meta`` file and lists its work in ``parts()``:
    ``(steps, train)`` pairs, trained in order, each ``train(report)`` passing
    ``report`` to the training as its progress callback.  ``finish`` may save
    results once the parts stop.  A page polls ``progress()`` and calls
    ``cancel()``; the status goes into the meta file as it changes.
    """

    meta: MetaFile

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._status, self._error = "queued", None
        self._done, self._total = 0, 0
        self._started: float | None = None
        self._ended: float | None = None
        self.future: Future | None = None  # set by Jobs.start
        self.meta.update(self.folder, status="queued")

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

    def parts(self) -> list[Part]:
        raise NotImplementedError

    def finish(self, status: str, error: str | None) -> dict:
        """The final meta changes (``status``, ``error`` and any more) once the parts stop."""
        return {"status": status, "error": error}

    def _set(self, status: str, error: str | None = None, **meta) -> None:
        # the file first: once a page sees the runner inactive, it reads the final status
        updated = datetime.now().astimezone().isoformat(timespec="seconds")
        self.meta.update(self.folder, status=status, error=error, updated=updated, **meta)
        with self._lock:
            self._status, self._error = status, error
            if status not in ACTIVE:
                self._ended = time.perf_counter()

    def _report(self, done: int) -> bool:
        """Record ``done`` steps of this run; False asks the training to stop."""
        with self._lock:
            self._done = done
        return not self.cancel_event.is_set()

    def run(self) -> Progress:
        """Train every part; never raises (the status says how it ended)."""
        torch.set_num_threads(1)  # per process, but worker threads are entry points too
        if self.cancel_event.is_set():
            self._set("cancelled")
            return self.progress()
        status, error = "finished", None
        try:
            parts = self.parts()
            with self._lock:
                self._total, self._started = sum(s for s, _ in parts), time.perf_counter()
            self._set("running")
            offset = 0
            for steps, train in parts:
                if self.cancel_event.is_set():
                    raise pop.Cancelled()

                def report(done: int, _total: int, offset: int = offset) -> bool:
                    return self._report(offset + done)

                with torch.no_grad():  # grad mode is per thread
                    train(report)
                offset += steps
                with self._lock:
                    self._done = offset
        except pop.Cancelled:
            status = "cancelled"
        except Exception as e:  # shown on the page, kept in the meta file
            status, error = "failed", f"{type(e).__name__}: {e}"
        try:
            self._set(**self.finish(status, error))
        except Exception as e:  # e.g. the folder was deleted: still end the job in memory
            with self._lock:
                self._status = "failed"
                self._error = f"{type(e).__name__}: {e}"
                self._ended = time.perf_counter()
        return self.progress()


R = TypeVar("R", bound=Runner)


class Jobs(Generic[R]):
    """The runners of one process (a subclass names its ``runner`` class): one worker
    thread trains jobs one after another, a later start waits its turn (status "queued").

    One worker because the machine has few cores and each population already keeps
    one busy; pass a shared ``executor`` to queue jobs behind other long work.
    """

    runner: type[R]

    def __init__(self, workers: int = 1, executor: Executor | None = None):
        self.executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"minidl-{Path(self.runner.meta.name).stem}")
        self._runners: dict[str, R] = {}
        self._lock = threading.Lock()

    def start(self, folder: str | Path) -> R:
        """Run (or resume) the job in ``folder``; an already active runner is returned as is."""
        folder = Path(folder)
        with self._lock:
            runner = self._runners.get(folder.name)
            if runner is not None and runner.active:
                return runner
            runner = self._runners[folder.name] = self.runner(folder)
            runner.future = self.executor.submit(runner.run)
        return runner

    def get(self, name: str) -> R | None:
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
