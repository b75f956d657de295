"""Jobs as files: what a job exports into its folder, and folders imported into the store.

When a job stops, its folder gets its tables (``Kind.finish``) and a meta file with its spec
and status (``export_meta``), so that the folder says what it holds — and can be imported
into another store.  A folder of an older minidl (a meta file and CSV files, no store) is
imported once, the first time a listing or a lookup meets it (``import_folder``,
``import_new``): its rows are read and checked like any saved file (``Kind.read_folder``),
and one that is damaged becomes a job with status "damaged" and the reason — listed,
never resumed, never a crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import Damaged
from .kind import DAMAGED, STATUSES, Kind, Saved, absolute, json_type, new_id, read_spec, stamp, store
from .rows import read_bytes

MAX_META_BYTES = 1 << 20  # a meta file of minidl's is a few kilobytes


def export_meta(kind: Kind, job: Saved, status: str, error: str | None = None) -> None:
    """Write the job's spec and ``status`` into its folder (``kind.meta_name``), beside the
    files ``Kind.finish`` exports, so that the folder says what it holds — and can be
    imported into another store."""
    row = job.store.job(id=job.id)
    meta = {**json.loads(row["spec"]), "created": row["created"], "status": status,
            "error": error, "owner": row["owner"], "updated": stamp()}
    job.folder.mkdir(parents=True, exist_ok=True)
    tmp = job.folder / f".{kind.meta_name}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(job.folder / kind.meta_name)  # atomic: a reader never sees half a file


def read_meta(kind: Kind, folder: Path) -> dict:
    """An exported folder's meta file; ``Damaged`` if it is not a JSON object whose creation
    time, status and error are text."""
    raw = read_bytes(folder / kind.meta_name, MAX_META_BYTES)
    if raw is None:
        raise Damaged(f"{kind.meta_name} is missing")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Damaged(f"{kind.meta_name} is not a text file") from None
    except RecursionError:
        raise Damaged(f"{kind.meta_name} is nested too deeply to be settings") from None
    except json.JSONDecodeError as error:
        raise Damaged(f"{kind.meta_name} is not valid JSON ({error.msg}, line {error.lineno})"
                      ) from None
    if not isinstance(meta, dict):
        raise Damaged(f"{kind.meta_name} holds {json_type(meta)}, not an object of settings")
    for name in ("created", "status", "error", "updated"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise Damaged(f"{kind.meta_name}: {name} is {json_type(meta[name])}, not text")
    if meta.get("status", "created") not in STATUSES:
        raise Damaged(f"{kind.meta_name}: unknown status {meta['status'][:40]!r}")
    return meta


def import_folder(kind: Kind, folder: str | Path) -> None:
    """Save the job a folder of an older minidl holds (its meta file and result files) in the
    store, once; one that cannot be read becomes a damaged job with the reason."""
    folder = absolute(folder)
    db = store()
    # the job is named after its folder (another kind's job may have its name already)
    id = next(n for n in (folder.name, f"{folder.name}-{kind.name}", new_id())
              if db.job(id=n) is None)
    try:
        meta = read_meta(kind, folder)
        spec = read_spec(kind, json.dumps(meta))
        by_part = kind.read_folder(spec, folder)
    except (Damaged, OSError) as error:
        db.insert(id=id, kind=kind.name, folder=str(folder), spec="{}", title="", owner=None,
                  status=DAMAGED, error=str(error)[:1000], created=_created(folder), done=0,
                  total=0)
        return
    owner = meta.get("owner")  # a damaged owner field is nobody's token: no visitor controls it
    db.insert(id=id, kind=kind.name, folder=str(folder), spec=json.dumps(spec.to_dict()),
              title=kind.describe(spec), owner=owner if owner is None or isinstance(owner, str)
              else "",
              status=meta.get("status", "created"), error=meta.get("error"),
              created=meta.get("created") or _created(folder), updated=meta.get("updated"),
              done=0, total=sum(kind.units(spec, p) for p in kind.parts(spec)))
    job = Saved(db, id, folder)
    job.add(by_part, 0)
    done = sum(kind.done_by_part(spec, job).values())
    db.update(id, done=done)


def _created(folder: Path) -> str:
    """When a job was created, from its folder's name (``20250101-120000-…``) if it says."""
    name = folder.name
    if len(name) >= 15 and name[:8].isdigit() and name[8] == "-" and name[9:15].isdigit():
        return f"{name[:4]}-{name[4:6]}-{name[6:8]}T{name[9:11]}:{name[11:13]}:{name[13:15]}"
    return ""


def import_new(kind: Kind, root: Path) -> None:
    """Import every folder under ``root`` that holds a job of an older minidl (a meta file,
    or result files without one) and that the store does not know yet."""
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    known = store().folders()
    for entry in entries:
        folder = absolute(entry.path)
        if str(folder) in known or not entry.is_dir(follow_symlinks=False):
            continue
        if (folder / kind.meta_name).exists() or any(folder.glob("*.csv")):
            try:
                import_folder(kind, folder)
            except Damaged:  # imported meanwhile by another process
                continue
