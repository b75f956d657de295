"""Running saved jobs (``minidl.jobs``): a runner per job, a scheduler of job processes.

A ``Runner`` trains what is still missing of each part of a job (so a rerun
*resumes*) in the calling process, holding the job's lock, counts this run's
own optimizer steps for a progress bar and ETA (also written to the job's
progress file for other processes), and stops when ``cancel()`` is called; the
status goes into the job's meta file as it changes.  The command line runs
jobs this way.

The app hands jobs to a ``Scheduler``: a bounded line of jobs of every kind,
each trained by a process of its own (``python -m minidl run-job``) at a
lower OS priority, so a job can neither slow the app's sessions much nor take
the app down with it.  A page polls ``Job.progress()`` and is never called back.

Why this module is long: running a job in this process (``Runner``) and in a
process of its own under the server's limits (``Scheduler``) share a progress
format, a lock and a status vocabulary, so they are written side by side.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..engine import fit as pop
from . import limits, tasks
from .store import ACTIVE, PROGRESS_NAME, Busy, FolderCheckpoints, JobLock, Kind, locked

PROGRESS_SECONDS = 0.5  # how often a training process writes its progress file


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
        self.kind, self.folder, self.workers = kind, Path(folder), workers
        self.scheduler = scheduler
        self.spec = kind.spec_from_dict(kind.meta.read(self.folder))
        self.lock = JobLock(self.folder)  # Busy if another process trains it; run() releases
        self.cancel_event = threading.Event()
        self._stop: Future = Future()  # completed by ``cancel``: ``tasks.run`` waits on it too
        self._lock = threading.Lock()
        self._status, self._error = "queued", None
        self._done, self._total = 0, 0
        self._started: float | None = None
        self._ended: float | None = None
        self._written = 0.0  # when the progress file was last written
        kind.meta.update(self.folder, status="queued")

    @property
    def name(self) -> str:
        return self.folder.name

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
        # the file first: once a page sees the runner inactive, it reads the final status
        updated = datetime.now().astimezone().isoformat(timespec="seconds")
        self.kind.meta.update(self.folder, status=status, error=error, updated=updated)
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
        """The progress file other processes read (``read_progress``)."""
        self._written = time.perf_counter()
        p = self.progress()
        path = self.folder / PROGRESS_NAME
        tmp = path.with_name(f"{PROGRESS_NAME}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(p)))
            tmp.replace(path)
        except OSError:  # progress is a courtesy: never let it stop the training
            pass

    def run(self) -> Progress:
        """Train every part's missing work; never raises (the status says how it ended)."""
        try:
            return self._run()
        finally:
            self.lock.release()

    def _run(self) -> Progress:
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

            def save(task: tasks.Task, result) -> None:
                kind.save(spec, task.part, self.folder, result)

            with tasks.pool(self.scheduler, self.workers) as where:
                offset = 0
                for stage in kind.stages(spec):
                    parts = [p for p in stage if costs[p] > 0]
                    if parts and self.cancel_event.is_set():
                        raise pop.Cancelled()

                    def report(done: int, total: int, offset: int = offset) -> bool:
                        return self._report(offset + done, total)
                    work = [t for p in parts for t in kind.tasks(spec, p, self.folder)]
                    tasks.run(work, save, where, report, FolderCheckpoints(self.folder),
                              self._stop)
                    offset += sum(costs[p] for p in parts)
            # a cancel that came during the last epoch could not stop it: all is done then
            if self.cancel_event.is_set() and any(kind.steps(spec, p, self.folder) > 0
                                                  for p in todo):
                raise pop.Cancelled()
        except pop.Cancelled:
            status = "cancelled"
        except Exception as e:  # shown on the page, kept in the meta file
            status, error = "failed", f"{type(e).__name__}: {e}"
        if status == "finished":  # nothing left to resume: stale checkpoints go too
            shutil.rmtree(self.folder / tasks.CHECKPOINTS, ignore_errors=True)
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


def read_progress(folder: str | Path) -> Progress | None:
    """The progress a job's training process last wrote (None before it wrote any)."""
    try:
        d = json.loads((Path(folder) / PROGRESS_NAME).read_text())
        return Progress(str(d["status"]), int(d["done"]), int(d["total"]),
                        float(d["elapsed"]), d.get("error"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class QueueFull(RuntimeError):
    """The scheduler cannot take another job now; the message says why."""


class Job:
    """A job handed to a ``Scheduler``: waiting in line, then trained by a process of its own."""

    def __init__(self, scheduler: Scheduler, kind: Kind, folder: Path, owner: str | None):
        self.scheduler, self.kind, self.folder, self.owner = scheduler, kind, folder, owner
        self.status = "queued"          # queued → running → the status the process ended with
        self.cancelling = False
        self.process: subprocess.Popen | None = None
        self.queued_at = time.perf_counter()

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def position(self) -> int | None:
        """1 for the next job to start, 2 for the one after…; None unless waiting."""
        return self.scheduler.position(self.name)

    def progress(self) -> Progress:
        if self.status == "queued":
            return Progress("queued", 0, 0, time.perf_counter() - self.queued_at)
        p = read_progress(self.folder)
        if p is None or (self.active and p.status not in ACTIVE):  # an older run's file
            return Progress(self.status, 0, 0, 0.0)
        return p if self.active else Progress(self.status, p.done, p.total, p.elapsed,
                                              p.error)

    def cancel(self) -> None:
        self.scheduler.cancel(self.name)


class Scheduler:
    """Jobs of every kind in one line: at most ``running`` train at once, each in a process
    of its own at a lower OS priority (``nice``), so the app's own sessions stay quick; at
    most ``waiting`` more wait their turn, and at most ``per_owner`` of them (running or
    waiting) are one visitor's.  ``None``: no limit.  A job trains ``workers`` tasks at a
    time (one core each), or sends them to the Dask cluster at ``scheduler``.

    A thread starts the next job as one ends; a process that dies without saying how its
    job ended (killed, out of memory) leaves it "failed" with the reason.
    """

    def __init__(self, running: int = 1, waiting: int | None = 3, per_owner: int | None = None,
                 nice: int = 10, workers: int = 1, scheduler: str | None = None,
                 poll: float = 0.2):
        self.running, self.waiting, self.per_owner, self.nice = running, waiting, per_owner, nice
        self.workers, self.scheduler = workers, scheduler
        self._jobs: dict[str, Job] = {}
        self._line: list[Job] = []      # waiting, first to start first
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(poll,), daemon=True,
                                        name="minidl-scheduler")
        self._thread.start()

    @staticmethod
    def limits() -> tuple[int, int | None, int | None, int, int, str | None]:
        """The server's limits (``minidl.limits``) as this class's first six arguments."""
        return (limits.get("MINIDL_RUNNING_JOBS") or 1, limits.get("MINIDL_WAITING_JOBS"),
                limits.get("MINIDL_JOBS_PER_VISITOR"), limits.get("MINIDL_JOB_NICE") or 0,
                limits.get("MINIDL_JOB_WORKERS") or 1, limits.get("MINIDL_DASK_SCHEDULER"))

    # ------------------------------------------------ what pages call

    def refusal(self, owner: str | None) -> str | None:
        """Why a new job of ``owner`` cannot be taken now, or None if it can."""
        with self._lock:
            return self._refusal(owner)

    def _refusal(self, owner: str | None) -> str | None:
        active = [j for j in self._jobs.values() if j.active]
        mine = self._jobs_of(owner) if owner is not None else []
        if self.per_owner is not None and len(mine) >= self.per_owner:
            return (f"You already have {len(mine)} job{'s' * (len(mine) != 1)} running or "
                    "waiting on this server; one more can start when it ends or you cancel it.")
        if self.waiting is not None and len(self._line) >= self.waiting and \
                len(active) >= self.running:
            running = len(active) - len(self._line)
            return (f"The server is busy: {running} job{'s' * (running != 1)} running and "
                    f"{len(self._line)} waiting, the most it takes. Try again when one ends.")
        return None

    def submit(self, kind: Kind, folder: str | Path, owner: str | None = None) -> Job:
        """Queue the job saved in ``folder`` (to run or resume it); ``QueueFull`` when the
        limits say no.  A job already queued or running is returned as is."""
        folder = Path(folder)
        with self._lock:
            job = self._jobs.get(folder.name)
            if job is not None and job.active:
                return job
            reason = self._refusal(owner)
            if reason:
                raise QueueFull(reason)
            if locked(folder):
                raise Busy(f"{folder.name} is being trained by another process")
            kind.meta.update(folder, status="queued", error=None)
            (folder / PROGRESS_NAME).unlink(missing_ok=True)  # the last run's
            job = self._jobs[folder.name] = Job(self, kind, folder, owner)
            self._line.append(job)
        self._tick()
        return job

    def get(self, name: str) -> Job | None:
        with self._lock:
            return self._jobs.get(name)

    def active(self) -> set[str]:
        """Names of the jobs waiting or running now."""
        with self._lock:
            return {name for name, j in self._jobs.items() if j.active}

    def jobs_of(self, owner: str | None) -> list[Job]:
        """``owner``'s jobs waiting or running now."""
        with self._lock:
            return self._jobs_of(owner)

    def _jobs_of(self, owner: str | None) -> list[Job]:
        return [j for j in self._jobs.values() if j.active and j.owner == owner]

    def position(self, name: str) -> int | None:
        with self._lock:
            names = [j.name for j in self._line]
            return names.index(name) + 1 if name in names else None

    def cancel(self, name: str) -> None:
        """A waiting job leaves the line ("cancelled"); a running one is asked to stop after
        its current epoch (SIGTERM), keeping what it finished."""
        with self._lock:
            job = self._jobs.get(name)
            if job is None or not job.active:
                return
            job.cancelling = True
            if job in self._line:
                self._line.remove(job)
                job.status = "cancelled"
                job.kind.meta.update(job.folder, status="cancelled")
            elif job.process is not None:
                job.process.send_signal(signal.SIGTERM)

    def shutdown(self) -> None:
        """Cancel every job and wait for the processes to end."""
        self._stop.set()
        with self._lock:
            self._line.clear()
            running = [j for j in self._jobs.values() if j.process is not None and j.active]
        for job in running:
            job.process.send_signal(signal.SIGTERM)
        for job in running:
            job.process.wait()
        self._thread.join()
        self._reap()

    # ------------------------------------------------ the thread

    def _loop(self, poll: float) -> None:
        while not self._stop.wait(poll):
            self._tick()

    def _tick(self) -> None:
        self._reap()
        with self._lock:
            while self._line and sum(j.status == "running" for j in self._jobs.values()) \
                    < self.running:
                job = self._line.pop(0)
                job.status = "running"
                try:
                    job.process = _spawn(job.kind, job.folder, self.nice, self.workers,
                                         self.scheduler)
                except OSError as e:
                    job.status = "failed"
                    job.kind.meta.update(job.folder, status="failed",
                                         error=f"could not start its process: {e}")

    def _reap(self) -> None:
        with self._lock:
            ended = [j for j in self._jobs.values() if j.status == "running"
                     and j.process is not None and j.process.poll() is not None]
        for job in ended:
            code = job.process.returncode
            try:
                meta = job.kind.meta.read(job.folder)
            except (OSError, ValueError):
                meta = {}
            status = meta.get("status")
            if status in ACTIVE or status is None:  # it died before it could say so
                # (asked to stop before it could listen, it stops all the same: cancelled)
                status = "cancelled" if job.cancelling else "failed"
                reason = None if job.cancelling else _death(code, job.folder)
                try:
                    job.kind.meta.update(job.folder, status=status, error=reason)
                except (OSError, ValueError):
                    pass
            with self._lock:
                job.status = status


LOG_NAME = ".log"  # a job process's output (its traceback, if it crashed)


def _spawn(kind: Kind, folder: Path, nice: int, workers: int, scheduler: str | None = None
           ) -> subprocess.Popen:
    """``python -m minidl run-job KIND FOLDER`` at ``nice`` lower priority with ``workers``
    threads (or on the Dask cluster of ``scheduler``), its output in ``FOLDER/.log``."""
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    with open(folder / LOG_NAME, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "minidl", "run-job", kind.name, str(folder),
             "--nice", str(nice), "--workers", str(workers),
             *(["--scheduler", scheduler] if scheduler else [])],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def _death(code: int, folder: Path) -> str:
    """Why a job's process ended without finishing its job, in words."""
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        if -code == signal.SIGKILL:
            return f"its process was killed ({name}; the machine may have run out of memory)"
        return f"its process was stopped by signal {name}"
    try:
        lines = (folder / LOG_NAME).read_text(errors="replace").strip().splitlines()
    except OSError:
        lines = []
    last = lines[-1][:200] if lines else ""
    return f"its process ended with exit code {code}" + (f": {last}" if last else "")


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
