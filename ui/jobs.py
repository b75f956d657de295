"""Widgets shared by the pages that run saved jobs (``minidl.jobs``): Cross-validation's sweeps,
Reproduce's studies and ablations, and the one scheduler that trains them all."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from minidl import jobs
from minidl.jobs import limits, runner
from minidl.jobs import scheduler as line
from minidl.text import cut
from minidl.viz import tables

APP_ROOT = Path(__file__).resolve().parent.parent

OWNER = "_job_owner"  # Session State: this visitor's random token
NOT_YOURS = "Started by another visitor: you can watch it and see its results, not stop or " \
    "resume it."


def scheduler() -> line.Scheduler:
    """The server's one line of jobs (every kind, every session), under its limits."""
    return _scheduler(*line.Scheduler.limits())


@st.cache_resource
def _scheduler(*limits_now) -> line.Scheduler:
    return line.Scheduler(*limits_now)


def session_owner() -> str:
    """This session's owner token (random, made on first use): the jobs it launches carry
    it, and only it may cancel or resume them."""
    return st.session_state.setdefault(OWNER, secrets.token_hex(16))


def controls(owner: str | None) -> bool:
    """Whether this session may cancel or resume a job of ``owner`` (``None``: a job from the
    command line, which belongs to whoever runs the app)."""
    return owner is None or owner == session_owner()


def refusal() -> str | None:
    """Why this session cannot launch a job now (the server's line is full, or it already
    has its share), or None."""
    return scheduler().refusal(session_owner())


def kinds() -> list[jobs.Kind]:
    from minidl.experiments.kinds import KINDS
    return list(KINDS.values())


def launch(kind: jobs.Kind, folder) -> line.Job | None:
    """Queue the job saved in ``folder`` for this session (after deleting saved jobs past
    the server's retention limits); a refusal shows as a warning."""
    line = scheduler()
    try:
        jobs.prune(kinds(), active=line.active() | {Path(folder).name})
        return line.submit(kind, folder, session_owner())
    except (line.QueueFull, jobs.Busy) as error:
        st.warning(str(error), icon=":material/hourglass:")
        return None


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def job_progress_ui(name: str, cancel_key: str, cancel_help: str | None = None,
                    owner: str | None = None) -> None:
    """Progress bar, ETA, place in line and — for its owner only — Cancel of a job the
    scheduler holds; reruns the page once it stops.  For a fragment that reruns every
    second or so."""
    job = scheduler().get(name)
    if job is None or not job.active:
        st.rerun()
    p = job.progress()
    place = job.position if p.status == "queued" else None
    progress_bar(p, f"Waiting: {ordinal(place)} in line" if place else "Starting…")
    if not controls(owner):
        st.caption(NOT_YOURS)
        return
    st.button("Stopping…" if job.cancelling else "Cancel", key=cancel_key,
              icon=":material/stop:", on_click=job.cancel, disabled=job.cancelling,
              help=cancel_help)


def progress_bar(p: runner.Progress | None, idle: str) -> None:
    """A job's bar with its steps and ETA while it trains, else empty with ``idle``."""
    training = p is not None and p.status == "running" and p.total > 0
    st.progress(p.fraction if training else 0.0,
                text=f"Training: {p.describe()}" if training else idle)


def elsewhere_ui(folder: Path) -> None:
    """Progress of a job that another process trains — the command line, another server —
    with no controls (its process holds the job's lock); reruns the page once it ends.  For
    a fragment that reruns every second or so."""
    if not jobs.locked(folder):
        st.rerun()
    progress_bar(runner.read_progress(folder), "Training…")
    pid = None if limits.public() else jobs.lock_holder(folder)
    st.caption("Trained by another process" + (f" (pid {pid})" if pid else "") + ", such as "
               "the command line's: you can watch it here, not stop or resume it.")


def resume_button(kind: jobs.Kind, job: jobs.JobInfo, key: str) -> None:
    """**Resume** for a stopped job: it trains only what is missing.  Disabled, saying why,
    when the job is over the work cap (``$<kind.cap_env>``) or the server's line is full;
    only its owner sees it."""
    if not controls(job.owner):
        st.caption(NOT_YOURS)
        return
    try:
        size = jobs.estimate(kind, job.spec, folder=job.folder)  # the work still to do
    except ValueError as error:  # a bad cap in the environment
        st.error(str(error), icon=":material/error:")
        return
    busy = refusal()
    st.button("Resume", key=key, type="primary", icon=":material/play_arrow:", on_click=launch,
              args=(kind, job.folder), disabled=not size.allowed or busy is not None,
              help=(busy or f"train the missing {kind.unit}s" if size.allowed else
                    f"over the cap of {size.cap_text} optimizer steps (${kind.cap_env})"))


def damaged(job: jobs.JobInfo, what: str) -> None:
    """Why a damaged job (status "damaged") cannot be shown: ``"damaged: <reason>"`` as plain
    text.  There is nothing to resume or cancel."""
    problem(f"This {what}'s files are damaged or were not written by this app, so it cannot "
            "be shown or resumed. Move its folder away, or start a new one.",
            f"damaged: {job.error}")


def label(job: jobs.JobInfo, describe: Callable[[object], str]) -> str:
    """A saved job in a selector: creation time and ``describe(spec)``, or for a damaged job
    its folder's name and "damaged"."""
    if job.spec is None:
        return f"{job.name} · damaged"
    return f"{job.created_text} · {describe(job.spec)}"


DETAIL_CHARACTERS = 300  # of an error's text from a file or an exception, as shown


def problem(message: str, detail: object, alert=st.error) -> None:
    """``message`` (the page's own words) in an alert, and ``detail`` — text from a file or
    an exception, which a damaged or foreign file controls — below it as plain text, never
    as Markdown, on one block cut to ``DETAIL_CHARACTERS``."""
    alert(message, icon=":material/error:" if alert is st.error else ":material/warning:")
    text = hide_paths(str(detail))
    st.code(cut(text, DETAIL_CHARACTERS), language=None, wrap_lines=True)


def hide_paths(text: str) -> str:
    """On a public server, ``text`` without the server's folders (the results root and the
    app's own folder become ``<results>`` and ``<app>``)."""
    if not limits.public():
        return text
    for folder, name in ((jobs.results_root().resolve(), "<results>"), (APP_ROOT, "<app>")):
        text = text.replace(str(folder), name)
    return text


def public_note() -> None:
    """On a public server, what a visitor may run and for how long it is kept."""
    if not limits.public():
        return
    share = limits.get("MINIDL_JOBS_PER_VISITOR")
    days = limits.get("MINIDL_KEEP_DAYS")
    st.caption("This is a shared public demo: "
               + (f"{tables.plural(share, 'job')} at a time per visitor, " if share else "")
               + "jobs train one after another in a short line"
               + (f", and saved jobs are deleted after {tables.plural(days, 'day')}" if days
                  else "") + ". Install it to run larger ones (see the README).")


_MARKDOWN = "\\`*_{}[]()#+-.!|<>~:$&"


def plain(text: object, limit: int = 80) -> str:
    """``text`` (a label from a file) made safe inside Markdown: every character Markdown or
    Streamlit gives a meaning is backslash-escaped, addresses are kept from becoming links,
    line breaks become spaces, and it is cut to ``limit`` characters."""
    text = cut(" ".join(str(text).split()), limit)
    # a zero-width space keeps an address from being turned into a link (GFM autolinks)
    text = text.replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return "".join("\\" + c if c in _MARKDOWN else c for c in text)
