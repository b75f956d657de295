"""What the pages that train live in the background share (the Playground, Compare): the
server's one bound on sessions training at once, the test of whether a browser tab is still
open, and the line that says why training waits or stopped."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from minidl import limits
from ui.background import Slots, Trainer


def slots() -> Slots:
    """The server's places to train (``MINIDL_TRAINING_SESSIONS``): a Playground session and
    a race take one each."""
    return _slots(limits.get("MINIDL_TRAINING_SESSIONS"))


@st.cache_resource(show_spinner=False)
def _slots(limit: int | None) -> Slots:
    return Slots(limit)


def session_alive() -> Callable[[], bool]:
    """A test of whether this browser session is still connected (its tab open)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():  # AppTest: no server, no tabs to close
        return lambda: True
    runtime, session = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session)


def status(t: Trainer) -> tuple[str, str, str] | None:
    """Why the trainer is not training although it was asked to, if it is not:
    ``(kind, text, icon)`` for ``st.<kind>(text, icon=icon)``, else None."""
    if t.state == "waiting":
        busy = t.slots.busy()
        return ("warning", f"Waiting for a free place to train: {busy} session"
                f"{' is' if busy == 1 else 's are'} training on this server, at most "
                f"{t.slots.limit} at once. Yours starts when "
                f"{'it' if busy == 1 else 'one of them'} pauses.", ":material/hourglass_top:")
    if t.stop_reason == "idle":
        return ("info", "Paused because nobody looked at this page for a few minutes; press "
                "**Train** to go on.", ":material/pause_circle:")
    if t.stop_reason == "error":
        return ("error", "Training stopped with an error (see the server's log); press "
                "**Reset**.", ":material/error:")
    return None


def status_ui(t: Trainer) -> None:
    """``status`` drawn here, if there is one."""
    line = status(t)
    if line:
        kind, text, icon = line
        getattr(st, kind)(text, icon=icon)
