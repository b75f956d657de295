"""What a kind of job is (``Kind``), and one saved job as a kind reads and writes it (``Saved``).

A ``Kind`` (sweep, study, ablation — declared in ``minidl.experiments``) says what its
jobs train: a spec (any object with ``to_dict()``), parts (e.g. one per activation ×
optimizer pair), the units a part is made of (configurations, runs) and the tasks that
train what is still missing (``minidl.jobs.tasks``).  Everything else — where jobs are
saved, their status, running them — is written once, in ``minidl.jobs``.

``Saved`` is a job in the store: its result rows (``rows`` / ``add``), its tasks'
checkpoints (``save`` / ``drop``, the ``tasks.Checkpoints`` a run keeps them in) and the
folder its files are exported to.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from .. import hparams
from ..text import cut
from . import limits, tasks
from .errors import Damaged
from .store import Store, default_url, open_store

ACTIVE = ("queued", "running")
RESUMABLE = ("created", "cancelled", "failed", "interrupted")
STATUSES = ("created", *ACTIVE, "finished", "cancelled", "failed")  # what a job may say
DAMAGED = "damaged"  # a job whose data cannot be read: listed with the reason, never resumed
RESULTS_ENV = "MINIDL_RESULTS_DIR"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "results"


def results_root() -> Path:
    """Where jobs are exported (and the default store lives): ``$MINIDL_RESULTS_DIR`` or
    ``results/`` in the repository."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_ROOT)


def store() -> Store:
    """This process's store: ``$MINIDL_STORAGE``, else ``minidl.db`` in the results root."""
    return open_store(default_url(results_root()))


@dataclass(frozen=True)
class Saved:
    """One saved job; see the module docstring."""

    store: Store
    id: str
    folder: Path

    def rows(self, part: str | None = None) -> list[dict]:
        """The job's result rows (of one ``part``), in the order they were saved; a row that
        is not a JSON object raises ``Damaged``."""
        out = []
        for row_part, text in self.store.rows(self.id, part):
            try:
                row = json.loads(text)
            except (ValueError, RecursionError):
                row = None
            if not isinstance(row, dict):
                raise Damaged(f"a saved row of {row_part[:40]} is not an object of values")
            out.append(row)
        return out

    def add(self, rows: Mapping[str, list[Mapping]], units: int) -> None:
        """Save each part's ``rows``, which finish ``units`` units (one transaction)."""
        self.store.add_rows(self.id, rows, units)

    # ------------------------------------------------------------ checkpoints

    def save(self, task: tasks.Task, state: dict, trained: int) -> None:
        """Keep ``task``'s checkpoint, replacing its last one (``tasks.Checkpoints``)."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.store.save_checkpoint(
            self.id, key=task.key, part=task.part, units=task.units,
            args=json.dumps(task.args, default=str), done=task.done + trained,
            cost=task.done + task.cost, state=buffer.getvalue())

    def drop(self, task: tasks.Task) -> None:
        self.store.drop_checkpoints(self.id, task.key)

    def checkpoints(self, part: str) -> list[dict]:
        """``part``'s checkpoints: each ``{"key", "args", "units", "done", "cost"}`` (``done``
        of ``cost`` steps trained)."""
        out = []
        for saved in self.store.checkpoints(self.id, part):
            try:
                args = json.loads(saved["args"])
            except (ValueError, RecursionError):
                continue  # damaged: its task starts over
            out.append({**{k: saved[k] for k in ("key", "units", "done", "cost")},
                        "args": args})
        return out

    def resumed(self, todo: list[tasks.Task]) -> list[tasks.Task]:
        """``todo`` with each task that has a checkpoint set to go on from it (its ``cost``
        what is left).  A checkpoint that cannot be read is ignored: its task starts over."""
        held = {}
        for task in todo:
            for saved in self.store.checkpoints(self.id, task.part):
                if saved["key"] == task.key:
                    try:
                        state = torch.load(io.BytesIO(saved["state"]), weights_only=True)
                    except Exception:  # damaged: forgotten, and its task starts over
                        state = None
                    if isinstance(state, dict):
                        held[task.key] = (saved["done"], state)
                    else:
                        self.drop(task)
        return [task if task.key not in held else replace(
            task, cost=max(0, task.cost - held[task.key][0]), resume=held[task.key][1],
            done=held[task.key][0]) for task in todo]


class Kind:
    """What one kind of job trains; a subclass fills in these names and methods.

    A spec is any object with ``to_dict()``; ``spec_from_dict`` reads it back (raising
    ``ValueError`` on a bad one).  A job's parts are named by strings (e.g.
    ``"tanh-sgd"``).
    """

    name: str          # "sweep"
    folder: str        # subfolder of the results root its jobs are exported to: "sweeps"
    meta_name: str     # the file in an exported folder that holds its spec: "sweep.json"
    unit: str          # what a part is made of: "configuration", "run"
    cap_env: str       # the limit (``minidl.jobs.limits``) bounding a job's optimizer steps

    def spec_from_dict(self, d: Mapping) -> Any:
        raise NotImplementedError

    def describe(self, spec) -> str:
        """What a job of ``spec`` trains, in a few words (for lists and selectors)."""
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

    def steps(self, spec, part: str, job: Saved | None = None) -> int:
        """Optimizer steps ``part`` still needs (all of them without a ``job``)."""
        raise NotImplementedError

    def done_by_part(self, spec, job: Saved) -> dict[str, int]:
        """How many units of each part ``job`` has saved (the rows the parts share read
        once); ``Damaged`` if those rows are."""
        raise NotImplementedError

    def check(self, spec, job: Saved) -> None:
        """Raise ``Damaged`` if saved rows that ``done_by_part`` does not read are damaged."""

    def tasks(self, spec, part: str, job: Saved) -> list[tasks.Task]:
        """``part``'s missing work as tasks (``minidl.jobs.tasks``: checkpointable slices
        that a thread here or a Dask worker runs), each result saved by ``save``."""
        raise NotImplementedError

    def save(self, spec, part: str, job: Saved, result: Any) -> None:
        """Save what one of ``part``'s tasks returned (as it completes)."""
        raise NotImplementedError

    def finish(self, spec, job: Saved) -> None:
        """Called once the parts stop (finished, cancelled or failed): export the job's
        files (tables, Markdown) into its folder."""

    def read_folder(self, spec, folder: Path) -> dict[str, list[dict]]:
        """The result rows an exported folder (or one of an older minidl) holds, by part:
        what importing it saves.  ``Damaged`` if a file is damaged."""
        raise NotImplementedError

    # ------------------------------------------------ derived, written once

    def root(self) -> Path:
        return results_root() / self.folder

    def work_cap(self) -> int | None:
        """The most optimizer steps a job may ask for (``$<cap_env>``, see ``limits``;
        None: no cap); ``ValueError`` for a bad value."""
        return limits.get(self.cap_env)


def _setting_range(name: str) -> tuple[int, int]:
    s = hparams.setting(name)
    return int(s.low), int(s.high) - s.high_open


# the counts a job's spec holds, each with its range: a job's fields, the command line's
# flags and a saved spec's check all read them here (epochs and seeds: the settings table)
COUNTS: dict[str, tuple[int, int]] = {
    "folds": (2, 100), "runs": (1, 1000), "epochs": _setting_range("epochs"),
    "long_epochs": _setting_range("epochs"), "seed": _setting_range("init_seed"),
    "data_seed": _setting_range("data_seed"), "n_train": (2, int(hparams.MAX_POINTS))}


def check_counts(spec, names: Iterable[str]) -> None:
    """Each named field of a job's spec is an integer in its range (``COUNTS``;
    ``ValueError`` naming the first that is not): folds, runs, seeds, budgets."""
    for name in names:
        v, (low, high) = getattr(spec, name), COUNTS[name]
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise ValueError(f"{name} must be an integer in [{low:,}, {high:,}], got "
                             f"{cut(repr(v), 60)}")


def part_name(pair: tuple[str, str]) -> str:
    """``("tanh", "sgd")`` → ``"tanh-sgd"``: a pair's part of a job (and its file name)."""
    return f"{pair[0]}-{pair[1]}"


def part_pair(part: str) -> tuple[str, str]:
    activation, optimizer = part.split("-", 1)
    return activation, optimizer


def read_spec(kind: Kind, text: str) -> Any:
    """A saved spec (JSON text) as ``kind``'s spec; ``Damaged`` saying why it is not one."""
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        raise Damaged(f"{kind.meta_name}: not valid JSON") from None
    if not isinstance(d, dict):
        raise Damaged(f"{kind.meta_name} holds {json_type(d)}, not an object of settings")
    try:
        return kind.spec_from_dict(d)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError,
            RecursionError) as error:  # a spec's fields come from a file: any may be wrong
        reason = f"{error.args[0]!r} is missing" if isinstance(error, KeyError) else str(error)
        raise Damaged(f"{kind.meta_name}: {reason}") from None


def json_type(value: object) -> str:
    """What a JSON value is, in words: ``[]`` → "a list"."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def stamp() -> str:
    """This moment as a job's times are written: ISO 8601 with the time zone."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def new_id() -> str:
    """A new job's name: when it was made, and six random hex digits."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def absolute(folder: str | Path) -> Path:
    """A job's folder as the store names it."""
    return Path(os.path.abspath(folder))
