"""Widgets shared by pages (a module beside ``streamlit_app.py``, so that Streamlit's
``pages/`` router never mistakes it for a page)."""

from __future__ import annotations

import streamlit as st

from minidl import jobs


def job_progress_ui(runner: jobs.Runner | None, waiting: str, cancel_key: str,
                    cancel_help: str | None = None) -> None:
    """Progress bar, ETA and Cancel of a background job; reruns the page once it stops.

    For a fragment that reruns every second or so; ``waiting`` is the bar's text
    while the job is queued behind another.
    """
    if runner is None or not runner.active:
        st.rerun()
    p = runner.progress()
    st.progress(p.fraction, text=waiting if p.status == "queued" else f"Training: {p.describe()}")
    cancelling = runner.cancel_event.is_set()
    st.button("Stopping…" if cancelling else "Cancel", key=cancel_key, icon=":material/stop:",
              on_click=runner.cancel, disabled=cancelling, help=cancel_help)
