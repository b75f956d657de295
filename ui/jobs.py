"""Widgets shared by the pages that run saved jobs (``minidl.jobs``): Cross-validation's sweeps
and Reproduce's studies."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import streamlit as st

from minidl import jobs, runner

OWNER = "_job_owner"  # Session State: this visitor's random token
NOT_YOURS = "Started by another visitor: you can watch it and see its results, not stop or " \
    "resume it."


def session_owner() -> str:
    """This session's owner token (random, made on first use): the jobs it launches carry
    it, and only it may cancel or resume them."""
    return st.session_state.setdefault(OWNER, secrets.token_hex(16))


def controls(owner: str | None) -> bool:
    """Whether this session may cancel or resume a job of ``owner`` (``None``: a job from the
    command line, which belongs to whoever runs the app)."""
    return owner is None or owner == session_owner()


def job_progress_ui(job: runner.Runner | None, waiting: str, cancel_key: str,
                    cancel_help: str | None = None, owner: str | None = None) -> None:
    """Progress bar, ETA and — for its owner only — Cancel of a background job; reruns the
    page once it stops.

    For a fragment that reruns every second or so; ``waiting`` is the bar's text
    while the job is queued behind another.
    """
    if job is None or not job.active:
        st.rerun()
    p = job.progress()
    st.progress(p.fraction, text=waiting if p.status == "queued" else f"Training: {p.describe()}")
    if not controls(owner):
        st.caption(NOT_YOURS)
        return
    cancelling = job.cancel_event.is_set()
    st.button("Stopping…" if cancelling else "Cancel", key=cancel_key, icon=":material/stop:",
              on_click=job.cancel, disabled=cancelling, help=cancel_help)


def resume_button(kind: jobs.Kind, job: jobs.JobInfo, start: Callable[[jobs.JobInfo], object],
                  key: str) -> None:
    """**Resume** for a stopped job (``start(job)`` on click): it trains only what is missing.
    Disabled, saying why, when the job is over the work cap (``$<kind.cap_env>``); only its
    owner sees it."""
    if not controls(job.owner):
        st.caption(NOT_YOURS)
        return
    try:
        size = jobs.estimate(kind, job.spec, folder=job.folder)  # the work still to do
    except ValueError as error:  # a bad cap in the environment
        st.error(str(error), icon=":material/error:")
        return
    st.button("Resume", key=key, type="primary", icon=":material/play_arrow:", on_click=start,
              args=(job,), disabled=not size.allowed,
              help=(f"train the missing {kind.unit}s" if size.allowed else
                    f"over the cap of {size.cap:,} optimizer steps (${kind.cap_env})"))


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
    text = str(detail)
    st.code(text if len(text) <= DETAIL_CHARACTERS else text[:DETAIL_CHARACTERS - 1] + "…",
            language=None, wrap_lines=True)


_MARKDOWN = "\\`*_{}[]()#+-.!|<>~:$&"


def plain(text: object, limit: int = 80) -> str:
    """``text`` (a label from a file) made safe inside Markdown: every character Markdown or
    Streamlit gives a meaning is backslash-escaped, addresses are kept from becoming links,
    line breaks become spaces, and it is cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    # a zero-width space keeps an address from being turned into a link (GFM autolinks)
    text = text.replace("://", ":\u200b//").replace("www.", "www\u200b.")
    return "".join("\\" + c if c in _MARKDOWN else c for c in text)
