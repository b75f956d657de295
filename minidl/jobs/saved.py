"""Saved jobs: create, find, list and size them — one mechanism for every kind.

A job lives in the store (``minidl.jobs.store``) and is addressed by its folder, where its
files are exported when it stops (``<results root>/<kind.folder>/<id>`` unless given, e.g.
by ``--out``): ``create`` / ``open_or_create``; ``info`` / ``list_jobs`` (``JobInfo``:
spec, status, progress in units, what part-trained work its checkpoints keep); status
created → queued → running → finished | cancelled | failed, and a job whose status says
queued or running that no process trains (nor a server's line holds) reads as
"interrupted"; ``estimate`` (optimizer steps against the kind's cap).  A folder of an older
minidl is imported when first met (``minidl.jobs.imports``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Damaged
from .imports import export_meta, import_folder, import_new, read_meta
from .kind import ACTIVE, DAMAGED, RESUMABLE, STATUSES, Kind, Saved, absolute, new_id, read_spec, stamp, store
from .locks import Busy
from .retention import prune


@dataclass(frozen=True)
class JobInfo:
    """One saved job as a list shows it."""

    folder: Path
    spec: Any          # None when damaged
    created: str
    status: str        # created, queued, running, finished, cancelled, failed, interrupted,
                       # or damaged (then ``spec`` is None and ``error`` says why)
    done: int          # units saved
    total: int         # units in the spec
    error: str | None = None
    owner: str | None = None  # see ``create``
    held: tuple[int, int, int] = (0, 0, 0)  # part-trained units: how many, steps trained, of
    name: str = ""     # the job's id
    title: str = field(default="", compare=False)  # ``Kind.describe(spec)``

    def kept(self, unit: str) -> str:
        """Exactly what a stopped job keeps: ``"12 of 696 configurations saved, and 96 more
        part-trained (41% of their optimizer steps)"``."""
        units, steps, of = self.held
        text = f"{self.done:,} of {self.total:,} {unit}{'s' * (self.total != 1)} saved"
        if units:
            text += f", and {units:,} more part-trained ({steps / max(1, of):.0%} of their " \
                    "optimizer steps)"
        return text

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def created_text(self) -> str:
        return self.created.replace("T", " ")[:16]


# ---------------------------------------------------------------- new jobs

def create(kind: Kind, spec, folder: str | Path | None = None, owner: str | None = None,
           status: str = "created") -> Path:
    """Save a new job of ``spec`` (status "created"), exported to ``folder`` or to
    ``<kind.root()>/<its id>``; returns the folder.  ``owner``: who may cancel and resume
    it (the app gives each visitor's session a random token); ``None`` — a job from the
    command line — belongs to whoever runs the app."""
    db = store()
    while True:
        id = new_id()
        path = absolute(folder if folder is not None else kind.root() / id)
        if db.job(folder=str(path)) is not None:
            raise ValueError(f"{path} holds another job; give a new folder")
        if db.job(id=id) is None:
            break
    path.mkdir(parents=True, exist_ok=True)
    _check_writable(path)
    db.insert(id=id, kind=kind.name, folder=str(path), spec=json.dumps(spec.to_dict()),
              title=kind.describe(spec), owner=owner, status=status, created=stamp(), done=0,
              total=sum(kind.units(spec, p) for p in kind.parts(spec)))
    return path


def _check_writable(folder: Path) -> None:
    """``OSError`` naming ``folder`` if files cannot be written in it: found now, not when the
    job's tables are written after its training, and said with the folder, not a temp file."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OSError(error.errno, f"cannot write in {folder} ({error.strerror})") from None


def open_or_create(kind: Kind, spec, folder: str | Path) -> Path:
    """``folder`` as the job of ``spec``: created if it holds no job, reused (to resume) if
    it holds the same spec; ``ValueError`` if it holds another job."""
    folder = absolute(folder)
    row = _find(kind, folder)
    if row is not None:
        if row["kind"] != kind.name:  # read as this kind, another kind's spec looks damaged
            raise ValueError(f"{folder} holds a {row['kind']}, not a {kind.name}; give a new "
                             "folder")
        job = _info(kind, row)
        if job.status == DAMAGED:
            raise Damaged(f"{folder} holds a damaged {kind.name} ({job.error}); give a new "
                          "folder")
        if job.spec.to_dict() != spec.to_dict():
            raise ValueError(f"{folder} holds another {kind.name}; give a new folder, or the "
                             "same settings to resume it")
        return folder
    if folder.is_dir() and any(folder.glob("*.csv")):
        raise Damaged(f"{folder} holds results, but its {kind.meta_name} is missing; give a "
                      "new folder")
    return create(kind, spec, folder)


# ---------------------------------------------------------------- reading jobs

def find(folder: str | Path) -> Saved:
    """The job exported to ``folder`` as its kind reads it (``FileNotFoundError`` if none)."""
    db = store()
    row = db.job(folder=str(absolute(folder)))
    if row is None:
        raise FileNotFoundError(f"no saved job at {folder}")
    return Saved(db, row["id"], Path(row["folder"]))


def open_job(kind: Kind, folder: str | Path) -> tuple[Saved, Any]:
    """The job at ``folder`` and its spec, importing the folder of an older minidl;
    ``FileNotFoundError`` if there is no job there, ``Damaged`` (with the reason) if it
    cannot be read."""
    folder = absolute(folder)
    row = _find(kind, folder)
    if row is None:
        raise FileNotFoundError(f"no saved {kind.name} at {folder}")
    if row["status"] == DAMAGED:
        raise Damaged(row["error"] or f"{folder} holds a damaged {kind.name}")
    return Saved(store(), row["id"], Path(row["folder"])), read_spec(kind, row["spec"])


def _find(kind: Kind, folder: Path) -> dict | None:
    """The store's row of the job at ``folder``, importing the folder of an older minidl."""
    db = store()
    row = db.job(folder=str(folder))
    if row is None and (folder / kind.meta_name).exists():
        try:
            import_folder(kind, folder)
        except Damaged:  # imported meanwhile by another process (the folder is unique)
            if db.job(folder=str(folder)) is None:
                raise
        row = db.job(folder=str(folder))
    return row


def _info(kind: Kind, row: Mapping, active: Collection[str] = (), check: bool = False
          ) -> JobInfo:
    """A store row as a ``JobInfo``; ``check``: read its rows too (a damaged one: damaged)."""
    base = dict(folder=Path(row["folder"]), created=row["created"], done=row["done"],
                total=row["total"], owner=row["owner"], name=row["id"],
                held=tuple(row.get("held", (0, 0, 0))), title=row["title"])
    if row["status"] == DAMAGED:
        return JobInfo(spec=None, status=DAMAGED, error=row["error"], **base)
    try:
        spec = read_spec(kind, row["spec"])
        if check:
            job = Saved(store(), row["id"], Path(row["folder"]))
            kind.done_by_part(spec, job)
            kind.check(spec, job)
    except Damaged as error:
        return JobInfo(spec=None, status=DAMAGED, error=str(error), **base)
    status = row["status"]
    if status in ACTIVE and row["id"] not in active and not store().claimed(row["id"]):
        status = "interrupted"
    return JobInfo(spec=spec, status=status, error=row["error"], **base)


def info(kind: Kind, folder: str | Path, active: Collection[str] = ()) -> JobInfo:
    """A job's spec, status and progress in units, its rows checked; a job whose data cannot
    be read has status "damaged", ``spec`` None and the reason as ``error``.  ``active``: the
    ids of the jobs this process has queued (they are not interrupted)."""
    folder = absolute(folder)
    row = _find(kind, folder)
    if row is None:
        return JobInfo(folder, None, "", DAMAGED, 0, 0, f"{kind.meta_name} is missing",
                       name=folder.name)
    [row] = store().jobs(kind.name, id=row["id"]) or [{**row, "held": (0, 0, 0)}]
    return _info(kind, row, active, check=True)


def list_jobs(kind: Kind, root: str | Path | None = None, active: Collection[str] = ()
              ) -> list[JobInfo]:
    """Every saved job of ``kind``, newest first (folders of an older minidl under ``root``,
    default ``kind.root()``, imported first); a job whose data cannot be read is listed with
    status "damaged"."""
    import_new(kind, Path(root) if root is not None else kind.root())
    out = [_info(kind, row, active) for row in store().jobs(kind.name)]
    return sorted(out, key=lambda j: (j.created, j.name), reverse=True)


def estimate(kind: Kind, spec, folder: str | Path | None = None) -> Estimate:
    """The size of ``spec``'s work, or with ``folder`` of the work the job there still has to
    do (what a resume asks for), against ``kind.work_cap()``."""
    job = None if folder is None else find(folder)
    parts = kind.parts(spec)
    return Estimate(len(parts), sum(kind.units(spec, p) for p in parts),
                    sum(kind.networks(spec, p) for p in parts),
                    sum(kind.steps(spec, p, job) for p in parts), kind.work_cap(), kind.unit)


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


# ---------------------------------------------------------------- one process per job

def locked(folder: str | Path) -> bool:
    """Whether a process (this one included) trains the job at ``folder`` now."""
    row = store().job(folder=str(absolute(folder)))
    return row is not None and store().locked(row["id"])


def claimed(folder: str | Path) -> bool:
    """Whether the job at ``folder`` waits in a server's line or a process trains it now."""
    row = store().job(folder=str(absolute(folder)))
    return row is not None and store().claimed(row["id"])


def lock(folder: str | Path):
    """A context in which this process holds the lock of the job at ``folder`` (``Busy`` if
    another holds it): what a process that trains the job does."""
    job = find(folder)
    return job.store.lock(job.id)


def lock_holder(folder: str | Path) -> int | None:
    """The process id that holds (or last held) the job's lock (None if unknown)."""
    row = store().job(folder=str(absolute(folder)))
    return None if row is None else store().holder(row["id"])


def set_status(job: Saved, status: str, error: str | None = None) -> None:
    job.store.update(job.id, status=status, error=error, updated=stamp())


__all__ = ["ACTIVE", "DAMAGED", "RESUMABLE", "STATUSES", "Busy", "Damaged", "Estimate",
           "JobInfo", "claimed", "create", "estimate", "export_meta", "find", "import_folder",
           "import_new", "info", "list_jobs", "lock", "lock_holder", "locked",
           "open_job", "open_or_create", "prune", "read_meta", "read_spec", "set_status"]
