"""The app's job processes: a bounded line of jobs of every kind, each trained by a process
of its own.

The app hands jobs to a ``Scheduler``: at most ``running`` train at once, each in a process of
its own (``python -m minidl run-job``, a ``runner.Runner``) at a lower OS priority, so a job
can neither slow the app's sessions much nor take the app down with it.  A page polls
``Job.progress()`` and is never called back.

Servers that share one store (replicas behind a proxy) each have a line, and a job is in one
at a time: a line holds the job's "waiting" lock (``minidl.jobs.locks``) until the job's
process holds its "training" lock, so another server's ``submit`` of it is refused (``Busy``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .. import files
from . import limits, saved
from .kind import Kind
from .runner import Progress, read_progress
from .saved import ACTIVE, Busy


class QueueFull(RuntimeError):
    """The scheduler cannot take another job now; the message says why."""


class Job:
    """A job handed to a ``Scheduler``: waiting in line, then trained by a process of its own."""

    def __init__(self, scheduler: Scheduler, kind: Kind, job: saved.Saved, owner: str | None,
                 present: Callable[[], bool] | None = None):
        self.scheduler, self.kind, self.job, self.owner = scheduler, kind, job, owner
        self.present = present  # whether its visitor is still here (None: always)
        self.folder = job.folder
        self.status = "queued"          # queued → running → the status the process ended with
        self.cancelling = False
        self.process: subprocess.Popen | None = None
        self.queued_at = time.perf_counter()
        self.waiting: contextlib.ExitStack | None = contextlib.ExitStack()  # None: let go

    @property
    def name(self) -> str:
        return self.job.id

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

    def let_go(self) -> None:
        """Release its "waiting" lock (its process holds the job now, or it ended)."""
        if self.waiting is not None:
            self.waiting.close()
            self.waiting = None


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

    def submit(self, kind: Kind, folder: str | Path, owner: str | None = None,
               present: Callable[[], bool] | None = None) -> Job:
        """Queue the job saved in ``folder`` (to run or resume it); ``QueueFull`` when the
        limits say no.  A job already queued or running is returned as is.  ``present``:
        whether its visitor is still here — one who left before it started gives up its
        place in line."""
        stored = saved.find(folder)
        with self._lock:
            job = self._jobs.get(stored.id)
            if job is not None and job.active:
                return job
            reason = self._refusal(owner)
            if reason:
                raise QueueFull(reason)
            job = Job(self, kind, stored, owner, present)
            job.waiting.enter_context(stored.store.lock(stored.id, "waiting"))  # or Busy
            if stored.store.locked(stored.id):
                job.let_go()
                raise Busy(f"{stored.id} is being trained by another process")
            # queued, without the last run's progress
            stored.store.update(stored.id, status="queued", error=None, progress=None)
            self._jobs[stored.id] = job
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
                saved.set_status(job.job, "cancelled")
                job.let_go()
            elif job.process is not None:
                job.process.send_signal(signal.SIGTERM)

    def shutdown(self) -> None:
        """Cancel every job and wait for the processes to end."""
        self._stop.set()
        with self._lock:
            for job in self._line:
                job.let_go()  # left "queued": interrupted, resumable by any server
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
        self._drop_absent()
        with self._lock:
            while self._line and sum(j.status == "running" for j in self._jobs.values()) \
                    < self.running:
                job = self._line.pop(0)
                job.status = "running"
                try:
                    job.process = _spawn(job.kind, job.folder, self.nice, self.workers,
                                         self.scheduler)
                except OSError as e:
                    saved.set_status(job.job, "failed", f"could not start its process: {e}")
                    job.status = "failed"  # after the store has the reason
                    job.let_go()

    def _drop_absent(self) -> None:
        """Waiting jobs whose visitors have left (every tab closed) leave the line."""
        with self._lock:
            waiting = list(self._line)
        gone = [j for j in waiting if j.present is not None and not j.present()]
        for job in gone:
            with self._lock:
                if job not in self._line:
                    continue
                self._line.remove(job)
            # stored first: whoever sees the job end reads why
            saved.set_status(job.job, "cancelled", "its visitor left before it could start")
            with self._lock:
                job.status = "cancelled"
            job.let_go()

    def _reap(self) -> None:
        """Let go of each job its process holds now; record how those whose process ended."""
        with self._lock:
            running = [j for j in self._jobs.values()
                       if j.status == "running" and j.process is not None]
        for job in running:
            if job.process.poll() is None:
                with contextlib.suppress(saved.Damaged):  # unreadable now: ask next tick
                    if job.waiting is not None and job.job.store.locked(job.name):
                        job.let_go()
                continue
            code = job.process.returncode
            try:
                status = job.job.store.job(id=job.name)["status"]
                elsewhere = job.job.store.locked(job.name)
            except (saved.Damaged, TypeError):
                status, elsewhere = None, False
            if elsewhere:  # another process took the job first (its process was refused):
                status = "cancelled"  # gone from this line; the store says what the other does
            elif status in ACTIVE or status is None:  # it died before it could say so
                # (asked to stop before it could listen, it stops all the same: cancelled)
                status = "cancelled" if job.cancelling else "failed"
                reason = None if job.cancelling else _death(code, job.folder)
                try:
                    saved.set_status(job.job, status, reason)
                except saved.Damaged:
                    pass
            with self._lock:
                job.status = status
            job.let_go()  # after the status: no one sees it stopped without a reason


LOG_NAME = ".log"  # a job process's output (its traceback, if it crashed)
LOG_BYTES = 1 << 20  # of it read back for the last line


def _spawn(kind: Kind, folder: Path, nice: int, workers: int, scheduler: str | None = None
           ) -> subprocess.Popen:
    """``python -m minidl run-job KIND FOLDER`` at ``nice`` lower priority with ``workers``
    threads (or on the Dask cluster of ``scheduler``), its output in ``FOLDER/.log``."""
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / LOG_NAME
    with contextlib.suppress(FileNotFoundError):
        log.unlink()  # whatever is there (a file, a link, a pipe): never written through
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as log:
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
        raw = files.read_bytes(folder / LOG_NAME, LOG_BYTES) or b""
    except files.Unreadable:  # a log too long or replaced by something else: the code only
        raw = b""
    lines = raw.decode(errors="replace").strip().splitlines()
    last = lines[-1][:200] if lines else ""
    return f"its process ended with exit code {code}" + (f": {last}" if last else "")
