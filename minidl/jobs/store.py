"""The store: every saved job, its status and progress, result rows and checkpoints, in one
database.

By default a SQLite file in the results root (``<root>/minidl.db``, write-ahead log on);
any other database SQLAlchemy reaches can stand in by URL (``MINIDL_STORAGE`` or
``--storage``: ``sqlite:///path/to/file.db``, ``postgresql+psycopg://…``) without
touching a caller — the tables are SQLAlchemy Core, nothing dialect-specific.

Tables: ``jobs`` (one row per job: kind, spec as JSON, owner, status, error, times, units
saved and in all, the progress its training process last wrote, the folder its files are
exported to), ``rows`` (result rows as JSON, by job and part), ``checkpoints`` (a task's
population state, by job and task key), ``meta`` (the schema version).  Every write is a
transaction, so a process killed at any moment leaves what its last commit saved.

A file that is not a database, or a database written by a newer minidl, raises
``StoreError`` with a message, never a traceback from the driver.

A job is trained by one process at a time and waits in one server's line at a time: the
store's locks (``Store.lock``, ``locked``, ``claimed``) are ``minidl.jobs.locks``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .errors import StoreError
from .locks import PG_SPACE, Locks

SCHEMA_VERSION = 1
STORAGE_ENV = "MINIDL_STORAGE"
DB_NAME = "minidl.db"


meta = sa.MetaData()
JOBS = sa.Table(
    "jobs", meta,
    sa.Column("id", sa.String(64), primary_key=True),      # 20250101-120000-3fa9c1
    sa.Column("kind", sa.String(32), nullable=False, index=True),
    sa.Column("folder", sa.Text, nullable=False, unique=True),  # where its files are exported
    sa.Column("spec", sa.Text, nullable=False),             # JSON of the kind's spec
    sa.Column("title", sa.Text, nullable=False, default=""),  # ``Kind.describe(spec)``
    sa.Column("owner", sa.String(64)),                      # a visitor's token, None: anyone's
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("updated", sa.String(32)),
    sa.Column("done", sa.Integer, nullable=False, default=0),  # units saved
    sa.Column("total", sa.Integer, nullable=False, default=0),  # units in the spec
    sa.Column("progress", sa.Text),                         # JSON of runner.Progress
)
ROWS = sa.Table(
    "rows", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("part", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),             # one result row as JSON
    sa.Index("rows_by_part", "job", "part"),
)
CHECKPOINTS = sa.Table(
    "checkpoints", meta,
    sa.Column("job", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),      # ``tasks.Task.key``
    sa.Column("part", sa.String(64), nullable=False),
    sa.Column("args", sa.Text, nullable=False),             # the task's arguments as JSON
    sa.Column("units", sa.Integer, nullable=False),         # units the task trains
    sa.Column("done", sa.Integer, nullable=False),          # optimizer steps trained …
    sa.Column("cost", sa.Integer, nullable=False),          # … of these
    sa.Column("state", sa.LargeBinary, nullable=False),     # ``torch.save`` of the state
)
META = sa.Table("meta", meta, sa.Column("key", sa.String(64), primary_key=True),
                sa.Column("value", sa.Text, nullable=False))


def default_url(root: Path) -> str:
    """``$MINIDL_STORAGE``, else the SQLite file in the results root ``root``."""
    return os.environ.get(STORAGE_ENV, "").strip() or f"sqlite:///{Path(root) / DB_NAME}"


class Store(Locks):
    """One database of jobs; see the module docstring.  Thread-safe (a connection pool)."""

    def __init__(self, url: str):
        self.url = url
        try:
            self.engine = sa.create_engine(url, **_engine_options(url))
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
            raise StoreError(f"the storage URL is not usable: {_reason(error)}") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._lock_dir = Path(f"{self.engine.url.database}.locks")
        with self._errors():
            with self.engine.begin() as c:
                if self.engine.dialect.name == "postgresql":  # servers starting side by side
                    c.execute(sa.text("SELECT pg_advisory_xact_lock(:a, 0)"), {"a": PG_SPACE})
                meta.create_all(c)
                version = c.execute(sa.select(META.c.value).where(
                    META.c.key == "schema_version")).scalar()
                if version is None:
                    c.execute(META.insert().values(key="schema_version",
                                                   value=str(SCHEMA_VERSION)))
                elif not version.isdigit() or int(version) > SCHEMA_VERSION:
                    raise StoreError(f"the store {self.where} was written by a newer minidl "
                                     f"(schema {version[:20]}; this one reads "
                                     f"{SCHEMA_VERSION}): upgrade minidl or use another")

    @property
    def where(self) -> str:
        """The store for people: its file, or its URL without a password."""
        if self.engine.dialect.name == "sqlite":
            return str(self.engine.url.database)
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A driver's error as a ``StoreError`` that says what went wrong, in a line."""
        try:
            yield
        except sa.exc.SQLAlchemyError as error:
            raise StoreError(f"the store {self.where} cannot be used: {_reason(error)}") from None

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A transaction: committed if the block ends normally, rolled back otherwise."""
        with self._errors(), self.engine.begin() as connection:
            yield connection

    # ------------------------------------------------------------ jobs

    def insert(self, **job: Any) -> None:
        with self.begin() as c:
            c.execute(JOBS.insert().values(**job))

    def job(self, *, id: str | None = None, folder: str | None = None) -> dict | None:
        """One job's row (without its progress) by id or folder; None if there is none."""
        where = JOBS.c.id == id if id is not None else JOBS.c.folder == folder
        with self.begin() as c:
            row = c.execute(sa.select(JOBS).where(where)).mappings().first()
        return None if row is None else dict(row)

    def jobs(self, kind: str, id: str | None = None) -> list[dict]:
        """Every job of ``kind`` (or the one ``id``) with the units its checkpoints hold:
        ``held`` (units, steps trained, steps in all) — one query, whatever the number of
        jobs."""
        held = (sa.select(CHECKPOINTS.c.job, sa.func.sum(CHECKPOINTS.c.units).label("u"),
                          sa.func.sum(CHECKPOINTS.c.done).label("d"),
                          sa.func.sum(CHECKPOINTS.c.cost).label("c"))
                .group_by(CHECKPOINTS.c.job).subquery())
        query = (sa.select(JOBS, held.c.u, held.c.d, held.c.c)
                 .outerjoin(held, held.c.job == JOBS.c.id).where(JOBS.c.kind == kind))
        if id is not None:
            query = query.where(JOBS.c.id == id)
        with self.begin() as c:
            rows = c.execute(query).mappings().all()
        return [{**row, "held": (row["u"] or 0, row["d"] or 0, row["c"] or 0)} for row in rows]

    def update(self, id: str, **changes: Any) -> None:
        with self.begin() as c:
            c.execute(JOBS.update().where(JOBS.c.id == id).values(**changes))

    def delete(self, id: str) -> None:
        with self.begin() as c:
            for table in (ROWS, CHECKPOINTS):  # not every database cascades by itself
                c.execute(table.delete().where(table.c.job == id))
            c.execute(JOBS.delete().where(JOBS.c.id == id))

    def folders(self) -> set[str]:
        """Every job's folder (to tell which folders on disk hold jobs not yet imported)."""
        with self.begin() as c:
            return set(c.execute(sa.select(JOBS.c.folder)).scalars())

    # ------------------------------------------------------------ result rows

    def add_rows(self, id: str, rows: Mapping[str, list[Mapping]], units: int) -> None:
        """Append each part's ``rows`` and count ``units`` more saved, in one transaction."""
        values = [{"job": id, "part": part, "data": json.dumps(dict(r), default=_plain)}
                  for part, part_rows in rows.items() for r in part_rows]
        with self.begin() as c:
            if values:
                c.execute(ROWS.insert(), values)
            c.execute(JOBS.update().where(JOBS.c.id == id).values(done=JOBS.c.done + units))

    def rows(self, id: str, part: str | None = None) -> list[tuple[str, str]]:
        """``(part, row JSON)`` of a job's rows (one part's), in the order they were saved."""
        query = sa.select(ROWS.c.part, ROWS.c.data).where(ROWS.c.job == id)
        if part is not None:
            query = query.where(ROWS.c.part == part)
        with self.begin() as c:
            return [tuple(r) for r in c.execute(query.order_by(ROWS.c.id))]

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, id: str, **checkpoint: Any) -> None:
        with self.begin() as c:
            c.execute(CHECKPOINTS.delete().where((CHECKPOINTS.c.job == id)
                                                 & (CHECKPOINTS.c.key == checkpoint["key"])))
            c.execute(CHECKPOINTS.insert().values(job=id, **checkpoint))

    def drop_checkpoints(self, id: str, key: str | None = None) -> None:
        """Forget one checkpoint of a job (``key``), or all of them."""
        where = CHECKPOINTS.c.job == id
        if key is not None:
            where &= CHECKPOINTS.c.key == key
        with self.begin() as c:
            c.execute(CHECKPOINTS.delete().where(where))

    def checkpoints(self, id: str, part: str) -> list[dict]:
        with self.begin() as c:
            return [dict(r) for r in c.execute(sa.select(CHECKPOINTS).where(
                (CHECKPOINTS.c.job == id) & (CHECKPOINTS.c.part == part))).mappings()]


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):  # many threads and processes share the file: wait, not fail
        return {"connect_args": {"timeout": 60, "check_same_thread": False}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")    # readers never wait for the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at every checkpoint of the log
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _reason(error: BaseException) -> str:
    """An error's first line, without the driver's SQL and parameters."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _plain(value: object) -> object:
    """What ``json.dumps`` cannot write: numpy and torch scalars, as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


_OPEN: dict[str, Store] = {}
_OPEN_LOCK = threading.Lock()


def open_store(url: str) -> Store:
    """The store at ``url``, opened once per process (a connection pool shared by threads)."""
    with _OPEN_LOCK:
        if url not in _OPEN:
            if url.startswith("sqlite:///"):
                Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
            _OPEN[url] = Store(url)
        return _OPEN[url]
