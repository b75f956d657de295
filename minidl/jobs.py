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
- result rows appended to CSV files as parts finish (``append_rows``,
  ``read_rows``).

Running a job is ``minidl.runner``.

Why this module is long: the saved-job mechanism is written once, here, for
every kind of job (meta files, result rows, estimates, listings), which is
what keeps ``sweeps`` and ``studies`` short.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import limits

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
    cap_env: str       # the limit (``minidl.limits``) bounding a job's optimizer steps

    def spec_from_dict(self, d: Mapping) -> Any:
        raise NotImplementedError

    def parts(self, spec) -> list[str]:
        raise NotImplementedError

    def stages(self, spec) -> list[list[str]]:
        """The parts in the order they must train: each stage's parts (in parallel where
        the runner has workers) after every part of the stage before.  Default: one stage."""
        return [self.parts(spec)]

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

    def work_cap(self) -> int | None:
        """The most optimizer steps a job may ask for (``$<cap_env>``, see ``minidl.limits``;
        None: no cap); ``ValueError`` for a bad value."""
        return limits.get(self.cap_env)


def check_counts(spec, lows: dict[str, int]) -> None:
    """Each named field of a job's spec is an integer at least its low bound (``ValueError``
    naming the first that is not): folds, runs, seeds, budgets."""
    for name, low in lows.items():
        v = getattr(spec, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")


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
    """Append rows to a CSV under the header already written (a new column is refused), as
    whole lines: a torn last line — a process killed while appending — is cut off first, and
    the rows are on disk (fsync) before this returns, so a finished population is never lost."""
    if not rows:
        return
    with _APPEND_LOCK:
        _append_rows(path, rows)


def _append_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    header = _repair_tail(path)
    if header:
        extra = set(frame.columns) - set(header)
        if extra:
            raise ValueError(f"{path.name} was written with other columns (new: "
                             f"{sorted(extra)}); use another folder")
        text = frame.reindex(columns=header).to_csv(header=False, index=False)
    else:
        text = frame.to_csv(index=False)
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _repair_tail(path: Path) -> list[str]:
    """Cut a CSV back to its last complete line; returns its header (``[]``: no header yet)."""
    try:
        f = open(path, "rb+")
    except FileNotFoundError:
        return []
    with f:
        first = f.readline()
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # the last newline, looked for a block at a time from the end
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        if end < size:  # a torn last line, or a header without its newline
            f.truncate(end)
    if not end or not first.endswith(b"\n"):
        return []
    return list(pd.read_csv(io.BytesIO(first), nrows=0).columns)


# ---------------------------------------------------------------- one process per job

LOCK_NAME = ".lock"          # held (flock) by the process training the job
PROGRESS_NAME = ".progress.json"  # written by that process as it trains


class Busy(RuntimeError):
    """Another process is training this job."""


class JobLock:
    """An exclusive lock on a job's folder for as long as a process trains it: a second
    process (the app and the command line, two replicas) gets ``Busy`` instead of training
    the same work twice.  The operating system drops the lock when the process ends, however
    it ends, so a job whose file says "running" without a holder was interrupted."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            pid = lock_holder(folder)
            raise Busy(f"{Path(folder).name} is being trained by another process"
                       + (f" (pid {pid})" if pid else "") + "; wait for it or stop it "
                       "first") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def locked(folder: str | Path) -> bool:
    """Whether a process (this one included) holds ``folder``'s ``JobLock`` now."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def lock_holder(folder: str | Path) -> int | None:
    """The process id written in ``folder``'s lock file (None if unreadable)."""
    try:
        return int((Path(folder) / LOCK_NAME).read_text().strip())
    except (OSError, ValueError):
        return None


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
    """The saved status, or "interrupted" where it says queued/running but no process trains
    it (none holds its lock) and ``folder``'s name is not among the ``active`` jobs' names
    (jobs this process queued)."""
    saved = meta.get("status", "created")
    if saved in ACTIVE and folder.name not in active and not locked(folder):
        return "interrupted"
    return saved


# ---------------------------------------------------------------- saved jobs

def create(kind: Kind, spec, folder: str | Path | None = None, owner: str | None = None
           ) -> Path:
    """Save a new job of ``spec`` (status "created") in ``folder`` or a new folder under
    ``kind.root()``; returns the folder.  ``owner``: who may cancel and resume it (the app
    gives each visitor's session a random token); ``None`` — a job from the command line —
    belongs to whoever runs the app."""
    return kind.meta.create(kind.root(), {**spec.to_dict(), "owner": owner},
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
    cap: int | None    # None: no cap
    unit: str

    @property
    def allowed(self) -> bool:
        return self.cap is None or self.steps <= self.cap

    @property
    def cap_text(self) -> str:
        return "none" if self.cap is None else f"{self.cap:,}"

    def describe(self) -> str:
        networks = "" if self.networks == self.units else f", {self.networks:,} networks"
        return (f"{self.units:,} {self.unit}{'s' * (self.units != 1)}{networks}, "
                f"{self.steps:,} optimizer steps (cap {self.cap_text})")


def estimate(kind: Kind, spec, folder: Path | None = None) -> Estimate:
    """The size of ``spec``'s work, or with ``folder`` of the work it still has to do
    (what a resume asks for), against ``kind.work_cap()``."""
    parts = kind.parts(spec)
    return Estimate(len(parts), sum(kind.units(spec, p) for p in parts),
                    sum(kind.networks(spec, p) for p in parts),
                    sum(kind.steps(spec, p, folder) for p in parts),
                    kind.work_cap(), kind.unit)


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
    owner: str | None = None  # see ``create``

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
    owner = meta.get("owner")
    return JobInfo(folder, spec, str(meta.get("created", "")), status(meta, folder, active),
                   sum(kind.units_done(spec, p, folder) for p in parts),
                   sum(kind.units(spec, p) for p in parts), meta.get("error"),
                   # a damaged owner field is nobody's token: no session controls the job
                   owner if owner is None or isinstance(owner, str) else "")


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


# ---------------------------------------------------------------- retention

def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def prune(kinds: Collection[Kind], active: Collection[str] = (), now: float | None = None
          ) -> list[Path]:
    """Delete saved jobs past the server's retention limits (``minidl.limits``: the newest
    jobs kept per kind, days since a job last changed, megabytes of the stopped ones), oldest
    first; a job queued here (``active``) or trained by any process is never deleted.
    Returns the folders deleted."""
    keep_jobs = limits.get("MINIDL_KEEP_JOBS")
    keep_days = limits.get("MINIDL_KEEP_DAYS")
    keep_mb = limits.get("MINIDL_KEEP_MB")
    if keep_jobs is None and keep_days is None and keep_mb is None:
        return []
    now = time.time() if now is None else now
    stopped: list[tuple[float, Path]] = []  # (last change, folder), every kind
    doomed: set[Path] = set()
    for kind in kinds:
        root = kind.root()
        folders = [f for f in root.iterdir() if f.is_dir()] if root.is_dir() else []
        newest_first = sorted(((f.stat().st_mtime, f) for f in folders), reverse=True)
        for rank, (changed, folder) in enumerate(newest_first):
            if folder.name in active or locked(folder):
                continue
            if (keep_jobs is not None and rank >= keep_jobs) or \
                    (keep_days is not None and now - changed > keep_days * 86400):
                doomed.add(folder)
            else:
                stopped.append((changed, folder))
    if keep_mb is not None:
        sizes = {folder: folder_bytes(folder) for _, folder in stopped}
        total = sum(sizes.values())
        for _, folder in sorted(stopped):
            if total <= keep_mb << 20:
                break
            doomed.add(folder)
            total -= sizes[folder]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(doomed)
