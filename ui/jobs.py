"""Widgets shared by the pages that run saved jobs (``minidl.jobs``): Cross-validation's sweeps,
Reproduce's studies and ablations, and the one scheduler that trains them all."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from minidl import jobs
from minidl.jobs import limits, runner
from minidl.jobs import scheduler as line
from minidl.text import cut
from minidl.viz import tables

OWNER = "_job_owner"  # Session State: this visitor's token (session_owner)
NOT_YOURS = "Started by another visitor: you can watch it and see its results, not stop or " \
    "resume it."
NOBODYS = "Started from the command line on this server: on a public server you can watch " \
    "it and see its results, not stop or resume it."


# the README's results, shipped with the app: offered beside the saved jobs, read-only
SHIPPED = Path(__file__).resolve().parent.parent / "docs" / "results"


def shipped(kind: jobs.Kind) -> set[Path]:
    """The folders of ``kind``'s jobs shipped in ``docs/results`` (those with its meta file).
    A listing of the store sees them only once imported (they lie outside the results root
    that ``jobs.list_jobs`` looks in): each is imported the first time it is met."""
    folders = {Path(os.path.abspath(meta.parent)) for meta in SHIPPED.glob(f"*/{kind.meta_name}")}
    for folder in folders:
        try:
            jobs.find(folder)
        except FileNotFoundError:
            try:
                jobs.open_job(kind, folder)  # imports it
            except jobs.Damaged:  # imported as damaged: listed with the reason
                pass
    return folders


def is_shipped(job: jobs.JobInfo) -> bool:
    return job.folder.parent == Path(os.path.abspath(SHIPPED))


def not_yours(owner: str | None) -> str:
    """Why this session has no controls for a job of ``owner``."""
    return NOBODYS if owner is None else NOT_YOURS


def scheduler() -> line.Scheduler:
    """The server's one line of jobs (every kind, every session), under its limits."""
    return _scheduler(*line.Scheduler.limits())


@st.cache_resource
def _scheduler(*limits_now) -> line.Scheduler:
    return line.Scheduler(*limits_now)


def session_owner() -> str:
    """This visitor's token: the jobs it launches carry it, only it may cancel or resume them,
    and the server's quotas count it.  A visitor is a browser — every tab of it, reloads
    included — known by Streamlit's XSRF cookie; where there is none (XSRF protection off,
    AppTest), each session is a visitor of its own."""
    state = st.session_state
    if OWNER not in state:
        token = browser_token(st.context.cookies.get(XSRF_COOKIE))
        state[OWNER] = token or secrets.token_hex(16)
    _visits().setdefault(state[OWNER], set()).add(_session_id())
    return state[OWNER]


XSRF_COOKIE = "_streamlit_xsrf"


def browser_token(cookie: str | None) -> str | None:
    """A visitor's token from the XSRF cookie its browser sends (None if it sends none that
    reads).  The cookie (``2|mask|masked token|time``) is masked afresh at every page load;
    the token under the mask is the browser's, so it is unmasked, then hashed: the cookie's
    own value never leaves this function."""
    parts = (cookie or "").strip("\"'").split("|")
    try:
        if len(parts) == 4 and parts[0] == "2":
            mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            token = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))
        elif len(parts) == 1 and parts[0]:
            token = bytes.fromhex(parts[0])
        else:
            return None
    except (ValueError, ZeroDivisionError):
        return None
    return hashlib.sha256(b"minidl visitor " + token).hexdigest()[:32] if token else None


@st.cache_resource
def _visits() -> dict[str, set[str]]:
    """The sessions (browser tabs) each visitor has opened on this server."""
    return {}


def _session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def visitor_present(owner: str) -> Callable[[], bool]:
    """A test of whether visitor ``owner`` still has a tab open on this server."""
    from streamlit.runtime import Runtime

    def present() -> bool:
        if not Runtime.exists():  # AppTest: no server, no tabs to close
            return True
        runtime, sessions = Runtime.instance(), _visits().get(owner, set())
        sessions.intersection_update([s for s in list(sessions)
                                      if runtime.is_active_session(s)])  # closed tabs go
        return bool(sessions)
    return present


def controls(owner: str | None) -> bool:
    """Whether this session may cancel or resume a job of ``owner``.  ``None``: a job from the
    command line, which belongs to whoever runs the app — on a public server, to nobody: its
    visitors may watch it, not stop or resume it."""
    if owner is None:
        return not limits.public()
    return owner == session_owner()


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
        owner = session_owner()
        return line.submit(kind, folder, owner, visitor_present(owner))
    except (line.QueueFull, jobs.Busy) as error:
        st.warning(str(error), icon=":material/hourglass:")
        return None




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
    progress_bar(p, f"Waiting: {tables.ordinal(place)} in line" if place else "Starting…")
    if not controls(owner):
        st.caption(not_yours(owner))
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
    or that waits in another server's line, with no controls (that process or server holds
    the job's lock); reruns the page once it ends.  For a fragment that reruns every second
    or so."""
    if not jobs.claimed(folder):
        st.rerun()
    training = jobs.locked(folder)
    progress_bar(runner.read_progress(folder),
                 "Training…" if training else "Waiting in another server's line…")
    pid = None if limits.public() or not training else jobs.lock_holder(folder)
    where = ("Trained by another process" + (f" (pid {pid})" if pid else "") + ", such as the "
             "command line's or another server's" if training else "Waiting in another server's line")
    st.caption(f"{where}: you can watch it here, not stop or resume it.")


def resume_button(kind: jobs.Kind, job: jobs.JobInfo, key: str) -> None:
    """**Resume** for a stopped job: it trains only what is missing.  Disabled, saying why,
    when the job is over the work cap (``$<kind.cap_env>``) or the server's line is full;
    only its owner sees it."""
    if not controls(job.owner):
        st.caption(not_yours(job.owner))
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
    if is_shipped(job):
        return f"the README's {job.folder.name} (docs/results) · {describe(job.spec)}"
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
    for spelling, name in server_folders():
        text = text.replace(spelling, name)
    return text


def server_folders() -> list[tuple[str, str]]:
    """Every spelling of the server's folders a message may carry — as configured (through
    a link, with ``..``), absolute, normalised and fully resolved — each with the name that
    replaces it, longest first (so that no spelling is left half-replaced)."""
    spellings = {}
    for folder, name in ((jobs.results_root(), "<results>"),
                         (Path(__file__).absolute().parent.parent, "<app>")):
        for form in (str(folder), os.path.abspath(folder), os.path.normpath(folder),
                     os.path.realpath(folder)):
            if os.path.isabs(form) and form != os.sep:
                spellings.setdefault(form.rstrip(os.sep), name)
    return sorted(spellings.items(), key=lambda item: -len(item[0]))


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
# where a zero-width space keeps text from becoming a link (GFM autolinks, in any case: web
# addresses, www., e-mail addresses, mailto: and xmpp:)
_AUTOLINKS = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?=@)|(?<=mailto)(?=:)|(?<=xmpp)(?=:)")


def plain(text: object, limit: int = 80) -> str:
    """``text`` (a label from a file) made safe inside Markdown: every character Markdown or
    Streamlit gives a meaning is backslash-escaped, addresses are kept from becoming links,
    line breaks become spaces, and it is cut to ``limit`` characters."""
    text = cut(" ".join(str(text).split()), limit)
    text = _AUTOLINKS.sub("\u200b", text)
    return "".join("\\" + c if c in _MARKDOWN else c for c in text)
