"""Result rows as tables, checked: from the store, or from a CSV file a person brings.

Saved data is untrusted (a hand edit, a foreign file, an old version): every table is
checked column by column as it is read (``check_columns``), and what does not fit raises
``Damaged`` naming the file or part, the line and the value.  ``read_table`` reads a CSV
file as text (a torn last line — a row still being written — is left out); ``frame``
turns rows from the store into the same text table, so one check serves both.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from .. import files
from ..text import cut
from .errors import Damaged

# What a column of a result table may hold: kind -> (a test of the values read as numbers
# — None for text — and what the values should be, in words).
COLUMN_KINDS: dict[str, tuple[Callable[[pd.Series], pd.Series] | None, str]] = {
    "text": (None, "text"),
    "number": (lambda v: pd.Series(True, index=v.index), "a number"),
    "score": (lambda v: v.isna() | v.between(0, 1), "empty or a number from 0 to 1"),
    "count": (lambda v: v.notna() & (v >= 0) & (v % 1 == 0) & (v < 2**53),
              "a whole number, 0 or more"),
}
_FLAGS = {"true": True, "false": False}
MAX_FILE_BYTES = 64 << 20  # a result file past this is not one minidl wrote


def read_rows(path: Path, required: Mapping[str, str], optional: Mapping[str, str] | None = None
              ) -> pd.DataFrame:
    """A CSV file's rows (``read_table``), each column checked against its kind."""
    path = Path(path)
    return check_columns(read_table(path), path.name, required, optional)


def read_bytes(path: Path, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """A regular file's bytes (None if there is none); ``Damaged`` for a folder, a pipe or
    a device in its place, a file too large, or one that cannot be read (``files``)."""
    try:
        return files.read_bytes(path, limit)
    except files.Unreadable as error:
        raise Damaged(str(error)) from None


def read_table(path: Path) -> pd.DataFrame:
    """A CSV file's rows as text, indexed by their line numbers in the file.

    A missing or empty file reads as no rows, and a last line without its line break (a
    row still being written) is left out; a file that is not text or not a table raises
    ``Damaged`` naming the file (and line)."""
    raw = read_bytes(Path(path))
    if raw is None:
        return pd.DataFrame()
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


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows from the store as ``read_table`` gives a file's: every value as text (None and
    NaN as empty), numbered from 1."""
    def text(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return str(value).lower() if isinstance(value, bool) else str(value)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return pd.DataFrame([[text(row.get(c)) for c in columns] for row in rows], columns=columns,
                        index=range(1, len(rows) + 1), dtype=str)


def check_columns(table: pd.DataFrame, file: str, required: Mapping[str, str],
                  optional: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``read_table``'s text as values: each column checked against its kind
    (``COLUMN_KINDS``, or "flag": true/false) — the ``required`` columns must be there, the
    ``optional`` ones are checked when present.  Numbers come back as floats (counts as
    integers), flags as bools; a missing column or a value of the wrong kind raises
    ``Damaged`` naming ``file``, line and value.  A table without columns stays empty."""
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
        raise Damaged(f"{file} line {row}: {name}={cut(text[row])!r} is not {wanted}")
    if kind == "flag":
        return values.astype(bool)
    return values.astype("int64") if kind == "count" else values.astype(float)
