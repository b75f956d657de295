"""Retention: the server's limits on saved jobs (``limits``: the newest kept per kind, days
since a job last changed, megabytes of the stopped ones), applied oldest first."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from . import limits
from .kind import Kind, absolute, store
from .store import CHECKPOINTS, ROWS


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder``, never following a link (``folder`` itself
    a link: none)."""
    if os.path.islink(folder):
        return 0
    total = 0
    for top, _, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                info = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _stored_bytes(ids: list[str]) -> dict[str, int]:
    out = dict.fromkeys(ids, 0)
    with store().begin() as c:
        for table, column in ((ROWS, ROWS.c.data), (CHECKPOINTS, CHECKPOINTS.c.state)):
            query = sa.select(table.c.job, sa.func.sum(sa.func.length(column))).group_by(
                table.c.job)
            for job, size in c.execute(query):
                if job in out:
                    out[job] += int(size or 0)
    return out


def prune(kinds: Collection[Kind], active: Collection[str] = (), now: float | None = None
          ) -> list[Path]:
    """Delete saved jobs past the server's retention limits (``limits``: the newest jobs kept
    per kind, days since a job last changed, megabytes of the stopped ones), oldest first, with
    their folders; only jobs exported under the results root, never one queued here
    (``active``: ids) or trained by any process.  Returns the folders deleted."""
    keep_jobs = limits.get("MINIDL_KEEP_JOBS")
    keep_days = limits.get("MINIDL_KEEP_DAYS")
    keep_mb = limits.get("MINIDL_KEEP_MB")
    if keep_jobs is None and keep_days is None and keep_mb is None:
        return []
    moment = time.time() if now is None else now
    db = store()
    stopped: list[tuple[float, dict]] = []
    doomed: dict[str, dict] = {}
    for kind in kinds:
        root = absolute(kind.root())
        rows = [r for r in db.jobs(kind.name) if Path(r["folder"]).parent == root]
        newest_first = sorted(rows, key=lambda r: _changed(r), reverse=True)
        for rank, row in enumerate(newest_first):
            if row["id"] in active or db.claimed(row["id"]):
                continue
            if (keep_jobs is not None and rank >= keep_jobs) or \
                    (keep_days is not None and moment - _changed(row) > keep_days * 86400):
                doomed[row["id"]] = row
            else:
                stopped.append((_changed(row), row))
    if keep_mb is not None:
        stored = _stored_bytes([row["id"] for _, row in stopped])
        sizes = {row["id"]: stored[row["id"]] + folder_bytes(Path(row["folder"]))
                 for _, row in stopped}
        total = sum(sizes.values())
        for _, row in sorted(stopped, key=lambda pair: pair[0]):
            if total <= keep_mb << 20:
                break
            doomed[row["id"]] = row
            total -= sizes[row["id"]]
    for id, row in doomed.items():
        db.delete(id)
        _remove(Path(row["folder"]))
    return sorted(Path(row["folder"]) for row in doomed.values())


def _remove(folder: Path) -> None:
    """Delete a job's folder; a link in its place is deleted itself, never what it points to
    (``rmtree`` never follows a link inside)."""
    if folder.is_symlink():
        folder.unlink(missing_ok=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def _changed(row: Mapping) -> float:
    """When a job last changed (its status), as a time stamp."""
    text = row["updated"] or row["created"]
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0
