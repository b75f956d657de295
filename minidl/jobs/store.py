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

Files on disk are untrusted (a crash mid-write, a hand edit, a foreign
folder): every meta file and result table is checked as it is read, and what
does not fit raises ``Damaged`` with a short reason.  A damaged job is listed
with status "damaged" (``info``), never resumed, never a crash.

Running a job is ``minidl.runner``.

Why this module is long: the saved-job mechanism is written once, here, for
every kind of job (meta files, result rows, estimates, listings), which is
what keeps ``sweeps`` and ``studies`` short.
"""

from __future__ import annotations

import csv
import dataclasses
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
import torch

from . import limits, tasks

RESULTS_ENV = "MINIDL_RESULTS_DIR"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "results"
ACTIVE = ("queued", "running")
RESUMABLE = ("created", "cancelled", "failed", "interrupted")
STATUSES = ("created", *ACTIVE, "finished", "cancelled", "failed")  # what a meta file may say
DAMAGED = "damaged"  # a job whose files cannot be read: listed with the reason, never resumed

Report = Callable[[int, int], "bool | None"]   # a training's progress(done, total); False: stop


class Damaged(ValueError):
    """A saved job's file does not hold what it should; the message says which file and why."""


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

    def units_held(self, spec, part: str, folder: Path) -> tuple[int, int, int]:
        """``part``'s part-trained units kept in checkpoints (``minidl.tasks``): how many,
        the optimizer steps their checkpoints have trained, and their steps in all."""
        return 0, 0, 0

    def check(self, spec, folder: Path) -> None:
        """Raise ``Damaged`` if a result file that ``units_done`` does not read is damaged."""

    def tasks(self, spec, part: str, folder: Path) -> list[tasks.Task]:
        """``part``'s missing work as tasks (``minidl.jobs.tasks``: checkpointable slices
        that a thread here or a Dask worker runs), each result saved by ``save``."""
        raise NotImplementedError

    def save(self, spec, part: str, folder: Path, result: Any) -> None:
        """Save what one of ``part``'s tasks returned (as it completes)."""
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

# What a column of a result table may hold: kind -> (a test of the values read as numbers
# — None for text — and what the values should be, in words).
COLUMN_KINDS: dict[str, tuple[Callable[[pd.Series], pd.Series] | None, str]] = {
    "text": (None, "text"),
    "number": (lambda v: pd.Series(True, index=v.index), "a number"),
    "score": (lambda v: v.isna() | v.between(0, 1), "empty or a number from 0 to 1"),
    "count": (lambda v: v.notna() & (v >= 0) & (v % 1 == 0), "a whole number, 0 or more"),
}
_FLAGS = {"true": True, "false": False}


def read_rows(path: Path, required: Mapping[str, str], optional: Mapping[str, str] | None = None
              ) -> pd.DataFrame:
    """A job's saved rows (``read_table``), each column checked against its kind
    (``check_columns``)."""
    path = Path(path)
    return check_columns(read_table(path), path.name, required, optional)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV file's rows as text, indexed by their line numbers in the file.

    A missing or empty file reads as no rows, and a last line without its line break (a
    row still being written) is left out; a file that is not text or not a table raises
    ``Damaged`` naming the file (and line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return pd.DataFrame()
    except IsADirectoryError:
        raise Damaged(f"{path.name} is a folder, not a file") from None
    except OSError as error:
        raise Damaged(f"{path.name} cannot be read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged(f"{path.name} is not a text file") from None
    if "\x00" in text:
        raise Damaged(f"{path.name} is not a text file")
    text = text[:text.rfind("\n") + 1]  # drop a torn last line (header included)
    if not text.strip():
        return pd.DataFrame()
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        rows, lines = [], []
        for row in reader:
            if row and len(row) != len(header):
                raise Damaged(f"{path.name} line {reader.line_num}: {len(row)} values under "
                              f"{len(header)} column names")
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise Damaged(f"{path.name} is not a readable table ({error})") from None
    if len(set(header)) != len(header):
        raise Damaged(f"{path.name}: a column name is repeated")
    return pd.DataFrame(rows, columns=header, index=lines, dtype=str)


def check_columns(table: pd.DataFrame, file: str, required: Mapping[str, str],
                  optional: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``read_table``'s text as values: each column checked against its kind
    (``COLUMN_KINDS``, or "flag": true/false) — the ``required`` columns must be there, the
    ``optional`` ones are checked when present.  Numbers come back as floats (counts as
    integers), flags as bools; a missing column or a value of the wrong kind raises
    ``Damaged`` naming ``file``, line and value.  A table without columns (no file) stays
    empty."""
    if table.columns.empty:
        return table
    table = table.copy()
    for name, kind in {**(optional or {}), **required}.items():
        if name in table:
            table[name] = _column(table[name], kind, file, name)
        elif name in required:
            raise Damaged(f"{file}: column {name} is missing")
    return table


def _column(text: pd.Series, kind: str, file: str, name: str) -> pd.Series:
    """One column's values as ``kind`` (``check_columns``); ``Damaged`` at the first that is
    not."""
    text = text.str.strip()
    if kind == "flag":
        values = text.str.lower().map(_FLAGS)
        bad, wanted = values.isna(), "true or false"
    else:
        test, wanted = COLUMN_KINDS[kind]
        if test is None:
            return text
        empty = text.str.lower().isin(("", "nan"))  # how a missing number is written
        values = pd.to_numeric(text.where(~empty), errors="coerce")
        bad = (values.isna() & ~empty) | ~test(values)
    if bad.any():
        row = bad.idxmax()
        shown = text[row] if len(text[row]) <= 40 else text[row][:37] + "…"
        raise Damaged(f"{file} line {row}: {name}={shown!r} is not {wanted}")
    if kind == "flag":
        return values.astype(bool)
    return values.astype(int) if kind == "count" else values.astype(float)


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


# ---------------------------------------------------------------- checkpoints on disk

def _checkpoint_path(folder: Path, task: tasks.Task) -> Path:
    return folder / tasks.CHECKPOINTS / f"{task.part}.{task.key}.pt"


def save_checkpoint(folder: Path, task: tasks.Task, state: dict, trained: int) -> None:
    """Keep ``task``'s checkpoint (its state once this run has trained ``trained`` of its
    steps) in ``folder``, replacing the last one (written whole, then renamed: never half a
    file)."""
    path = _checkpoint_path(folder, task)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"part": task.part, "args": json.loads(json.dumps(task.args, default=str)),
                "done": task.done + trained, "cost": task.done + task.cost, "state": state}, tmp)
    tmp.replace(path)


def drop_checkpoint(folder: Path, task: tasks.Task) -> None:
    _checkpoint_path(folder, task).unlink(missing_ok=True)


@dataclass(frozen=True)
class FolderCheckpoints:
    """``Checkpoints`` kept in a job's folder."""

    folder: Path

    def save(self, task: tasks.Task, state: dict, trained: int) -> None:
        save_checkpoint(self.folder, task, state, trained)

    def drop(self, task: tasks.Task) -> None:
        drop_checkpoint(self.folder, task)


def checkpoints(folder: Path, part: str) -> list[dict]:
    """``part``'s saved checkpoints: each ``{"args", "done", "cost", "state", "path"}``
    (``done`` of ``cost`` steps trained).  One that cannot be read is left out."""
    out = []
    for path in sorted((Path(folder) / tasks.CHECKPOINTS).glob(f"{part}.*.pt")):
        try:
            saved = torch.load(path, weights_only=True, mmap=True)  # tensors read when used
            if not (isinstance(saved, dict) and saved.get("part") == part
                    and isinstance(saved.get("done"), int) and isinstance(saved.get("cost"), int)
                    and isinstance(saved.get("state"), dict)):
                continue
        except Exception:  # a damaged file: its task starts over
            continue
        out.append({**saved, "path": path})
    return out


def resumed(folder: Path, todo: list[tasks.Task]) -> list[tasks.Task]:
    """``todo`` with each task that has a checkpoint in ``folder`` set to go on from it (its
    ``cost`` what is left)."""
    held = {c["path"].name: c for c in checkpoints(folder, todo[0].part)} if todo else {}
    out = []
    for task in todo:
        saved = held.get(_checkpoint_path(folder, task).name)
        out.append(task if saved is None else dataclasses.replace(
            task, cost=max(0, task.cost - saved["done"]), resume=saved["state"],
            done=saved["done"]))
    return out


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
        """The meta file's object; ``FileNotFoundError`` without one, ``Damaged`` if it is not
        a JSON object whose creation time, status and error are text."""
        path = Path(folder) / self.name
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except IsADirectoryError:
            raise Damaged(f"{self.name} is a folder, not a file") from None
        except UnicodeDecodeError:
            raise Damaged(f"{self.name} is not a text file") from None
        except json.JSONDecodeError as error:
            raise Damaged(f"{self.name} is not valid JSON ({error.msg}, line {error.lineno})"
                          ) from None
        if not isinstance(meta, dict):
            raise Damaged(f"{self.name} holds {_json_type(meta)}, not an object of settings")
        for name in ("created", "status", "error", "updated"):
            if meta.get(name) is not None and not isinstance(meta[name], str):
                raise Damaged(f"{self.name}: {name} is {_json_type(meta[name])}, not text")
        if meta.get("status", "created") not in STATUSES:
            raise Damaged(f"{self.name}: unknown status {meta['status'][:40]!r}")
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


def _json_type(value: object) -> str:
    """What a JSON value is, in words: ``[]`` → "a list"."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def read_spec(kind: Kind, folder: str | Path) -> tuple[dict, Any]:
    """A saved job's meta file and its spec; ``FileNotFoundError`` without a meta file,
    ``Damaged`` (naming the file) if either cannot be read."""
    meta = kind.meta.read(folder)
    try:
        return meta, kind.spec_from_dict(meta)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        # a spec's fields come from a file: any that is missing or of the wrong type is damage
        reason = f"{error.args[0]!r} is missing" if isinstance(error, KeyError) else str(error)
        raise Damaged(f"{kind.meta_name}: {reason}") from None


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
    if (folder / kind.meta_name).exists():
        job = info(kind, folder)
        if job.status == DAMAGED:
            raise Damaged(f"{folder} holds a damaged {kind.name} ({job.error}); give a new "
                          "folder")
        if job.spec.to_dict() != spec.to_dict():
            raise ValueError(f"{folder} holds another {kind.name}; give a new folder, or the "
                             "same settings to resume it")
        return folder
    if folder.is_dir() and any(folder.glob("*.csv")):
        raise Damaged(f"{folder} holds results, but its {kind.meta_name} is missing; give a new "
                      "folder")
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
    spec: Any          # None when damaged
    created: str
    status: str        # created, queued, running, finished, cancelled, failed, interrupted,
                       # or damaged (then ``spec`` is None and ``error`` says why)
    done: int          # units on disk
    total: int         # units in the spec
    error: str | None = None
    owner: str | None = None  # see ``create``
    held: tuple[int, int, int] = (0, 0, 0)  # part-trained units: ``Kind.units_held``, summed

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
    def name(self) -> str:
        return self.folder.name

    @property
    def resumable(self) -> bool:
        return self.status in RESUMABLE

    @property
    def created_text(self) -> str:
        return self.created.replace("T", " ")[:16]


def info(kind: Kind, folder: str | Path, active: Collection[str] = ()) -> JobInfo:
    """A job's spec, status and progress in units; a job whose meta file or results cannot
    be read has status "damaged", ``spec`` None and the reason as ``error``."""
    return _live(_read_info(kind, Path(folder)), active)


def _read_info(kind: Kind, folder: Path) -> JobInfo:
    """``info`` with the status as saved (what is read from the files)."""
    try:
        meta, spec = read_spec(kind, folder)
        parts = kind.parts(spec)
        done = sum(kind.units_done(spec, p, folder) for p in parts)
        held = [sum(h) for h in zip(*(kind.units_held(spec, p, folder) for p in parts))]
        kind.check(spec, folder)
    except FileNotFoundError:
        return JobInfo(folder, None, "", DAMAGED, 0, 0, f"{kind.meta_name} is missing")
    except (ValueError, OSError) as error:  # Damaged, or a file that cannot be opened
        return JobInfo(folder, None, "", DAMAGED, 0, 0, str(error))
    owner = meta.get("owner")
    return JobInfo(folder, spec, meta.get("created") or "", meta.get("status", "created"), done,
                   sum(kind.units(spec, p) for p in parts), meta.get("error"),
                   # a damaged owner field is nobody's token: no session controls the job
                   owner if owner is None or isinstance(owner, str) else "",
                   tuple(held) or (0, 0, 0))


def _live(job: JobInfo, active: Collection[str]) -> JobInfo:
    """``job`` with the status of this moment (``status``: is it still trained?)."""
    if job.status == DAMAGED:
        return job
    now = status({"status": job.status}, job.folder, active)
    return job if now == job.status else dataclasses.replace(job, status=now)


# A listing reads every job's files once, then again only when they change: a job is cached
# under the names, sizes and modification times of its files (not the lock, log and progress
# files, which change while nothing a listing shows does).
_LISTED: dict[tuple[str, Path], tuple[tuple, JobInfo]] = {}
_LISTED_LOCK = threading.Lock()


def _signature(folder: Path) -> tuple | None:
    try:
        with os.scandir(folder) as entries:
            return tuple(sorted((e.name, st.st_mtime_ns, st.st_size) for e in entries
                                if not e.name.startswith(".") for st in (e.stat(),)))
    except OSError:
        return None


def _cached_info(kind: Kind, folder: Path, active: Collection[str]) -> JobInfo:
    key, signature = (kind.name, folder), _signature(folder)
    with _LISTED_LOCK:
        hit = _LISTED.get(key)
    if hit is None or signature is None or hit[0] != signature:
        hit = (signature, _read_info(kind, folder))
        with _LISTED_LOCK:
            _LISTED[key] = hit
    return _live(hit[1], active)


def _listed(folder: Path, meta_name: str) -> bool:
    """Whether a folder under a kind's root is a job: it has a meta file, or results without
    one (listed as damaged; a folder being created has neither for a moment)."""
    return (folder / meta_name).exists() or (folder.is_dir() and any(folder.glob("*.csv")))


def _sort_time(job: JobInfo) -> str:
    """When a job was created, for sorting: its meta file's time, else the time its folder is
    named after (``MetaFile.create``: ``20250101-120000-…``)."""
    if job.created:
        return job.created
    name = job.name
    if len(name) >= 15 and name[:8].isdigit() and name[8] == "-" and name[9:15].isdigit():
        return f"{name[:4]}-{name[4:6]}-{name[6:8]}T{name[9:11]}:{name[11:13]}:{name[13:15]}"
    return ""


def list_jobs(kind: Kind, root: str | Path | None = None, active: Collection[str] = ()
              ) -> list[JobInfo]:
    """Every saved job of ``kind`` under ``root`` (default ``kind.root()``), newest first;
    a job whose files cannot be read is listed with status "damaged"."""
    root = Path(root) if root is not None else kind.root()
    if not root.is_dir():
        return []
    folders = [folder for folder in root.iterdir() if _listed(folder, kind.meta_name)]
    out = [_cached_info(kind, folder, active) for folder in folders]
    with _LISTED_LOCK:  # forget deleted jobs
        for key in [k for k in _LISTED if k[0] == kind.name and k[1].parent == root
                    and k[1] not in set(folders)]:
            del _LISTED[key]
    return sorted(out, key=lambda j: (_sort_time(j), j.name), reverse=True)


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
