"""A job's locks: one process trains it, one server's line holds it while it waits.

Each job has two locks: ``"training"``, held by the process that trains it (``runner``), and
``"waiting"``, held by the app's scheduler while the job waits in its line and until the
job's process holds the first (``scheduler``).  A lock ends with the process however it ends,
so a job whose status says queued or running while neither is held was interrupted:

- beside a SQLite database, ``flock`` on a file per lock (``<database>.locks/<id>``, which
  holds the trainer's process id);
- in PostgreSQL, which several servers share, an advisory lock held by a connection of its
  own (closed when the lock ends, or when its process dies).

``Locks`` is mixed into ``store.Store``, whose ``engine``, ``where``, ``begin`` and
``_errors`` it uses.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from .. import files
from .errors import Damaged, StoreError

LOCKS = ("training", "waiting")


class Busy(RuntimeError):
    """Another process is training this job, or another server's line holds it."""


class Locks:
    """The store's locks; see the module docstring."""

    engine: sa.Engine
    _lock_dir: Path  # beside a SQLite database

    @contextmanager
    def lock(self, id: str, what: str = "training") -> Iterator[None]:
        """Hold job ``id``'s lock ``what`` (one of ``LOCKS``) while the block runs (``Busy``
        if another process, or another block of this one, holds it)."""
        if what not in LOCKS:
            raise ValueError(f"no lock {what!r}; one of {LOCKS}")
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            with self._file_lock(id, what):
                yield
        elif dialect == "postgresql":
            with self._errors():
                connection = self._lock_engine().connect()
            try:
                with self._errors():
                    got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:a, :b)"),
                                             _pg_key(id, what)).scalar()
                    connection.commit()  # the lock outlives the transaction, not the connection
                if not got:
                    raise _busy(id, what)
                yield
            finally:
                connection.close()  # drops the lock (a connection of its own: never pooled)
        else:
            raise StoreError(f"the store {self.where} cannot lock jobs ({dialect}): use SQLite "
                             "or PostgreSQL")

    @contextmanager
    def _file_lock(self, id: str, what: str) -> Iterator[None]:
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        path = self._lock_path(id, what)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Damaged(f"the lock of {id} ({path}) is not a regular file; remove it")
            for wait in (0.0, 0.01, 0.05, 0.2):  # ``locked`` holds it for a moment to look
                time.sleep(wait)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
            else:
                raise _busy(id, what, self.holder(id) if what == "training" else None)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            yield
        finally:
            os.close(fd)  # drops the lock

    def _lock_path(self, id: str, what: str) -> Path:
        return self._lock_dir / (id if what == "training" else f"{id}.{what}")

    def _lock_engine(self) -> sa.Engine:
        """Connections that each hold one lock, closed (never pooled) when it ends."""
        if getattr(self, "_locks", None) is None:
            self._locks = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)
        return self._locks

    def locked(self, id: str, what: str = "training") -> bool:
        """Whether a process (this one included) holds job ``id``'s lock ``what`` now."""
        if self.engine.dialect.name == "postgresql":  # read, never taken: no one is refused
            with self.begin() as c:
                return c.execute(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database()) AND classid::bigint = :a AND objid::bigint = :b "
                    "AND objsubid = 2"), _pg_key(id, what)).scalar() > 0
        try:
            fd = os.open(self._lock_path(id, what), os.O_RDONLY | os.O_NONBLOCK)
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

    def claimed(self, id: str) -> bool:
        """Whether job ``id`` waits in a server's line or a process trains it (either lock)."""
        return any(self.locked(id, what) for what in LOCKS)

    def holder(self, id: str) -> int | None:
        """The process id written in job ``id``'s training lock (None if unreadable, or on a
        server database, whose lock may be another machine's)."""
        if self.engine.dialect.name != "sqlite":
            return None
        try:
            return int(files.read_bytes(self._lock_dir / id, 64) or b"")
        except ValueError:  # not a number, or not a regular file (files.Unreadable)
            return None


def _busy(id: str, what: str, pid: int | None = None) -> Busy:
    if what == "waiting":
        return Busy(f"{id} is waiting in another server's line; wait for it or stop it first")
    return Busy(f"{id} is being trained by another process" + (f" (pid {pid})" if pid else "")
                + "; wait for it or stop it first")


PG_SPACE = 0x6D6E646C  # "mndl": the first key of every minidl advisory lock


def _pg_key(id: str, what: str) -> dict[str, int]:
    """A PostgreSQL advisory lock's two keys: minidl's, and 31 bits of a hash of the job's id
    and lock (positive, as ``pg_locks`` shows it)."""
    digest = hashlib.blake2b(f"{what} {id}".encode(), digest_size=4).digest()
    return {"a": PG_SPACE, "b": int.from_bytes(digest, "big") >> 1}
