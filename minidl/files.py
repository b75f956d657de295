"""Reading a file that anyone may have put there (a results folder, a path on the command
line): only a regular file is read, at most a bounded number of bytes, and it is opened
without blocking, so that a named pipe, a device or a folder in its place is a message,
never a hang or a memory blow-up."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class Unreadable(ValueError):
    """A file cannot be read as data; the message names it and says why."""


def read_bytes(path: str | Path, limit: int) -> bytes | None:
    """The bytes of the regular file at ``path`` (None if there is nothing there);
    ``Unreadable`` for a folder, a pipe or a device in its place, a file of more than
    ``limit`` bytes, or one that cannot be read."""
    name = Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise Unreadable(f"{name} is a folder, not a file") from None
    except OSError as error:
        raise Unreadable(f"{name} cannot be read ({error.strerror or error})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable(f"{name} is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{name} is not a regular file")
        if info.st_size > limit:
            raise Unreadable(f"{name} has {info.st_size:,} bytes, more than the {limit:,} "
                             "expected")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew while being read
            raise Unreadable(f"{name} has more than the {limit:,} bytes expected")
        return data
    except OSError as error:
        raise Unreadable(f"{name} cannot be read ({error.strerror or error})") from None
    finally:
        os.close(fd)
