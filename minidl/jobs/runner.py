"""Running a saved job in this process: ``Runner``.

A ``Runner`` trains what is still missing of each part of a job (so a rerun *resumes*)
in the calling process, holding the job's lock, counts this run's own optimizer steps for
a progress bar and ETA (also written to the store for other processes: ``read_progress``),
and stops when ``cancel()`` is called; the status goes into the store as it changes.  The
command line, and the app's job processes (``minidl.jobs.scheduler``), run jobs this way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

from ..engine import fit as pop
from . import saved, tasks
from .kind import ACTIVE, Kind

PROGRESS_SECONDS = 0.5  # how often a training process writes its progress to the store


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

    Each part trains only what is missing.  Its work comes as tasks (``Kind.tasks``:
    slices of about ``tasks.POPULATION_SECONDS``, each checkpointed every
    ``tasks.SLICE_SECONDS``), stage after stage, through ``tasks.run``: ``workers`` at
    a time on threads here or, given a Dask ``scheduler`` address (``"local"``: a
    ``LocalCluster`` of ``workers`` processes), on that cluster's workers; each task's
    result is saved here as it completes.  A page polls ``progress()`` and calls
    ``cancel()``; the status goes into the meta file as it changes.
    """

    def __init__(self, kind: Kind, folder: str | Path, workers: int = 1,
                 scheduler: str | None = None):
        self.kind, self.workers, self.scheduler = kind, workers, scheduler
        self.job, self.spec = saved.open_job(kind, folder)  # Damaged: never trained
        self.folder = self.job.folder
        self._held = contextlib.ExitStack()  # Busy if another process trains it; run() lets go
        self._held.enter_context(self.job.store.lock(self.job.id))
        self.cancel_event = threading.Event()
        self._stop: Future = Future()  # completed by ``cancel``: ``tasks.run`` waits on it too
        self._lock = threading.Lock()
        self._status, self._error = "queued", None
        self._done, self._total = 0, 0
        self._started: float | None = None
        self._ended: float | None = None
        self._written = 0.0  # when the progress was last written
        saved.set_status(self.job, "queued")

    @property
    def name(self) -> str:
        return self.job.id

    def cancel(self) -> None:
        self.cancel_event.set()
        with self._lock:
            if not self._stop.done():
                self._stop.set_result(None)

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
        # the store first: once a page sees the runner inactive, it reads the final status
        saved.set_status(self.job, status, error)
        with self._lock:
            self._status, self._error = status, error
            if status not in ACTIVE:
                self._ended = time.perf_counter()
        self._write_progress()

    def _report(self, done: int, _total: int) -> bool:
        """Record ``done`` steps of this run; False asks the training to stop."""
        with self._lock:
            self._done = done
        if time.perf_counter() - self._written >= PROGRESS_SECONDS:
            self._write_progress()
        return not self.cancel_event.is_set()

    def _write_progress(self) -> None:
        """The progress other processes read (``read_progress``)."""
        self._written = time.perf_counter()
        try:
            self.job.store.update(self.job.id, progress=json.dumps(asdict(self.progress())))
        except saved.Damaged:  # progress is a courtesy: never let it stop the training
            pass

    def run(self) -> Progress:
        """Train every part's missing work; never raises (the status says how it ended)."""
        try:
            return self._run()
        finally:
            self._held.close()

    def _run(self) -> Progress:
        if self.cancel_event.is_set():
            self._set("cancelled")
            return self.progress()
        status, error = "finished", None
        try:
            kind, spec = self.kind, self.spec
            costs = {p: kind.steps(spec, p, self.job) for p in kind.parts(spec)}
            todo = [p for p, steps in costs.items() if steps > 0]
            with self._lock:
                self._total, self._started = sum(costs.values()), time.perf_counter()
            self._set("running")

            def save(task: tasks.Task, result) -> None:
                kind.save(spec, task.part, self.job, result)

            with tasks.pool(self.scheduler, self.workers) as where:
                offset = 0
                for stage in kind.stages(spec):
                    parts = [p for p in stage if costs[p] > 0]
                    if parts and self.cancel_event.is_set():
                        raise pop.Cancelled()

                    def report(done: int, total: int, offset: int = offset) -> bool:
                        return self._report(offset + done, total)
                    work = [t for p in parts for t in kind.tasks(spec, p, self.job)]
                    tasks.run(work, save, where, report, self.job, self._stop)
                    offset += sum(costs[p] for p in parts)
            # a cancel that came during the last epoch could not stop it: all is done then
            if self.cancel_event.is_set() and any(kind.steps(spec, p, self.job) > 0
                                                  for p in todo):
                raise pop.Cancelled()
        except pop.Cancelled:
            status = "cancelled"
        except Exception as e:  # shown on the page, kept in the meta file
            status, error = "failed", f"{type(e).__name__}: {e}"
        try:  # the files first: once the store says it stopped, they are there
            if status == "finished":  # nothing left to resume: stale checkpoints go too
                self.job.store.drop_checkpoints(self.job.id)
            self.job.folder.mkdir(parents=True, exist_ok=True)  # deleted meanwhile: again
            self.kind.finish(self.spec, self.job)
            saved.export_meta(self.kind, self.job, status, error)
        except Exception as e:
            status, error = "failed", f"saving the results: {type(e).__name__}: {e}"
        try:
            self._set(status, error)
        except Exception as e:  # e.g. the store was deleted: still end the job in memory
            with self._lock:
                self._status, self._error = "failed", f"{type(e).__name__}: {e}"
                self._ended = time.perf_counter()
        return self.progress()


def read_progress(folder: str | Path) -> Progress | None:
    """The progress a job's training process last wrote (None before it wrote any)."""
    try:
        job = saved.find(folder)
        d = json.loads(job.store.job(id=job.id)["progress"] or "null")
        return Progress(str(d["status"]), int(d["done"]), int(d["total"]),
                        float(d["elapsed"]), d.get("error"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_in_this_process(kind: Kind, folder: str | Path, nice: int = 0, workers: int = 1,
                        scheduler: str | None = None) -> int:
    """The body of ``python -m minidl run-job``: train the job here (or on the Dask cluster
    of ``scheduler``), SIGTERM cancelling it after the current epoch.  Returns 0 if it
    finished, 1 otherwise."""
    if nice:
        os.nice(nice)
    job = Runner(kind, folder, workers, scheduler)
    signal.signal(signal.SIGTERM, lambda *_: job.cancel())
    return 0 if job.run().status == "finished" else 1


