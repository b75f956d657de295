"""What a server lets its visitors do: the one table of server limits, local and public.

Every limit is an environment variable with two defaults: one for running
the app on your own machine (no work caps: the README's sweeps and studies run
from the UI)
and one for a public demo shared by anonymous visitors, chosen by
``MINIDL_PUBLIC=1``.  A variable that is set wins over both defaults.  On
Streamlit Community Cloud, top-level entries of the app's secrets are
environment variables too, so the same names work there.

``get(name)`` reads one limit (``ValueError`` naming the variable for a bad
value); ``problems()`` lists every bad value at once, for the app's startup
message.  ``None`` means "no limit".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..text import cut

PUBLIC_ENV = "MINIDL_PUBLIC"
_NO_LIMIT = ("", "none", "off", "unlimited")
STEPS = 10**15  # optimizer steps: years of this machine's time


@dataclass(frozen=True)
class Limit:
    """One server limit: its variable, its local and public defaults, its valid range."""

    name: str            # the environment variable
    local: int | None    # default on your own machine (None: no limit)
    public: int | None   # default in public mode
    low: int             # the smallest value that makes sense …
    high: int            # … and the largest (what the code that uses it can take)
    help: str
    text: bool = False   # a text value (an address), not a number


TABLE: dict[str, Limit] = {limit.name: limit for limit in [
    Limit("MINIDL_SWEEP_CAP", None, 6_000_000, 1, STEPS,
          "optimizer steps one sweep may ask for (the full default sweep is 26.7 million)"),
    Limit("MINIDL_STUDY_CAP", None, 3_000_000, 1, STEPS,
          "optimizer steps one study may ask for (the report's full study is 2.4 million)"),
    Limit("MINIDL_ABLATION_CAP", None, 10_000_000, 1, STEPS,
          "optimizer steps one ablation may ask for (the full ablation is 132 million)"),
    Limit("MINIDL_RUNNING_JOBS", 1, 1, 1, 64, "jobs training at once on the server"),
    Limit("MINIDL_WAITING_JOBS", 3, 3, 0, 1000, "jobs waiting in line behind them"),
    Limit("MINIDL_JOBS_PER_VISITOR", 1, 1, 1, 100,
          "jobs one visitor (a browser, all its tabs) may have running or waiting"),
    Limit("MINIDL_JOB_MEMORY_MB", 512, 160, 16, 1 << 20,
          "working memory of one job's networks; larger populations train in chunks"),
    Limit("MINIDL_JOB_WORKERS", 2, 1, 1, 256,
          "cores one job trains on (tasks at a time); a public server leaves one to its visitors"),
    Limit("MINIDL_JOB_NICE", 10, 10, 0, 19,
          "how much lower than the app's the priority of a job's process is (Unix nice, 0-19)"),
    Limit("MINIDL_TRAINING_SESSIONS", None, 50, 1, 1000,
          "Playground sessions and Compare races training at once, co-batched in the "
          "server's one training process; the others wait"),
    Limit("MINIDL_TRAINING_TURN_MINUTES", None, 5, 1, 10_080,
          "minutes a session trains on while others wait for a place; then it pauses and "
          "the first in line starts"),
    Limit("MINIDL_SESSION_TRAINING_MINUTES", None, 60, 1, 10_080,
          "minutes of training one browser session may use in all"),
    Limit("MINIDL_DASK_SCHEDULER", None, None, 0, 0,
          "address of a Dask scheduler (tcp://host:8786) whose workers train sweeps and "
          "studies; none: the job's own process", text=True),
    Limit("MINIDL_KEEP_JOBS", None, 30, 1, 10**6,
          "saved jobs kept per kind; the oldest stopped ones are deleted first"),
    Limit("MINIDL_KEEP_DAYS", None, 7, 1, 36_500, "days a stopped job is kept"),
    Limit("MINIDL_KEEP_MB", None, 300, 1, 10**9,
          "megabytes the stopped saved jobs may take on disk"),
]}


def public() -> bool:
    """Whether the server runs as a public demo (``$MINIDL_PUBLIC`` set to 1/true/yes/on)."""
    return os.environ.get(PUBLIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def get(name: str) -> int | str | None:
    """The value of limit ``name``: its variable if set, else the mode's default (text for a
    text limit)."""
    limit = TABLE[name]
    text = os.environ.get(name)
    if text is None:
        return limit.public if public() else limit.local
    text = text.strip()
    if text.lower() in _NO_LIMIT:
        return None
    if limit.text:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value == int(value) and limit.low <= value <= limit.high):
        raise ValueError(f"${name}={cut(text)!r} is not a whole number in [{limit.low:,}, "
                         f"{limit.high:,}] (or 'none' for no limit)")
    return int(value)


def job_memory() -> int:
    """Bytes of working memory one job's populations may take (``MINIDL_JOB_MEMORY_MB``)."""
    return (get("MINIDL_JOB_MEMORY_MB") or 1 << 20) << 20


def problems() -> list[str]:
    """Every limit whose variable holds a bad value, one message each."""
    out = []
    for name in TABLE:
        try:
            get(name)
        except ValueError as error:
            out.append(str(error))
    return out


def describe() -> list[dict]:
    """The table as rows (variable, local, public, meaning), for documentation."""
    def shown(v: int | None, text: bool) -> str:
        return ("none" if text else "no limit") if v is None else f"{v:,}"
    return [{"variable": t.name, "local": shown(t.local, t.text),
             "public": shown(t.public, t.text),
             "valid": "an address" if t.text else f"{t.low:,} to {t.high:,}",
             "meaning": t.help} for t in TABLE.values()]


def markdown_table() -> str:
    """``describe`` as the README's Deploy table."""
    lines = ["| variable | on your machine | public (`MINIDL_PUBLIC=1`) | valid | what it bounds |",
             "|---|---|---|---|---|"]
    lines += [f"| `{r['variable']}` | {r['local']} | {r['public']} | {r['valid']} | "
              f"{r['meaning']} |" for r in describe()]
    return "\n".join(lines)
