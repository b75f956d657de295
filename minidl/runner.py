"""Running saved jobs (``minidl.jobs``): a runner per job, a queue of them per process.

A ``Runner`` trains what is still missing of each part of a job (so a rerun
*resumes*), counts this run's own optimizer steps for a progress bar and ETA,
and stops when ``cancel()`` is called; the status goes into the job's meta file
as it changes.  A ``Queue`` holds the runners of one kind in one process and
trains them one after another on its worker thread.

No Streamlit here: a page polls ``Runner.progress()`` and is never called back.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from . import population as pop
from .jobs import ACTIVE, Kind, Report


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
        self.future: Future | None = None  # set by Queue.start
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

            offset = 0
            for stage in kind.stages(spec):
                parts = [p for p in stage if costs[p] > 0]
                if parts and self.cancel_event.is_set():
                    raise pop.Cancelled()

                def report(done: int, total: int, offset: int = offset) -> bool:
                    return self._report(offset + done, total)
                pop.run_parallel([task(p) for p in parts], [costs[p] for p in parts], report,
                                 self.workers)
                offset += sum(costs[p] for p in parts)
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


class Queue:
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
