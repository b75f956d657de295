"""minidl playground — the app's entry point: ``streamlit run streamlit_app.py``.

Navigation
----------
Every page is one file in ``pages/``, listed in ``PAGES`` below (order = order
in the sidebar).  A page's URL is its file name without ``.py``
(``pages/about.py`` → ``/about``); the first entry is the default page, served at ``/``
(Streamlit gives the default page no path of its own).

To add a page:

1. create ``pages/<name>.py`` that starts like ``pages/about.py``::

       import streamlit as st

       import streamlit_app

       streamlit_app.enter()

2. add ``("<name>", "Title", ":material/<icon>:")`` to ``PAGES``.

To fill a placeholder page, replace everything below ``streamlit_app.enter()``.

Serving
-------
``streamlit run streamlit_app.py`` serves ``app`` below (it finds an ``st.App`` assigned
here): Streamlit's server, plus a first load of our own (``ui/server.py``).  Without it, a
fresh server's first visitor would see the legacy pages/ router's file names in the sidebar,
and a deep link such as ``/about`` would make the browser probe ``/about/_stcore/health``.

Why ``enter``: where no ``st.App`` starts Streamlit (``AppTest``, for one), Streamlit still
has its legacy router for apps with a ``pages/`` folder and runs the *first* script run
with it — a deep link such as ``/about`` would run ``pages/about.py`` alone, without this
file, the shared page config or our navigation.  ``enter`` notices that (the entry point
did not start the page) and runs the real entry point instead, which shows the same page
properly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

from minidl import runtime
from minidl.jobs import limits
from ui import server, training

# (file name in pages/ = URL path, title, icon)
PAGES: list[tuple[str, str, str]] = [
    ("playground", "Playground", ":material/model_training:"),
    ("compare", "Compare", ":material/compare_arrows:"),
    ("cross_validation", "Cross-validation", ":material/grid_on:"),
    ("reproduce", "Reproduce", ":material/replay:"),
    ("about", "About", ":material/info:"),
]

TITLE = "minidl playground"
ICON = str(Path(__file__).resolve().parent / "ui" / "icon.png")  # the disk, in its colours
# set in Session State while the entry point runs a page (see ``enter``)
_RUNNING_PAGE = "_app_running_page"
_REPORTED: list[bool] = []  # whether bad server settings were printed to the log


def configure() -> None:
    # Tiny models run 25–100× faster on one torch thread than on two (README, Speed).
    runtime.setup()
    # a file, not a Material icon: Streamlit fetches those favicons from Google's font host
    st.set_page_config(page_title=TITLE, page_icon=ICON, layout="wide")


def check_limits() -> None:
    """A server started with a bad limit (``minidl.limits``, e.g. ``MINIDL_SWEEP_CAP=lots``)
    says so on every page and in its log, and stops, instead of failing later in a job."""
    st.secrets.load_if_toml_exists()  # top-level secrets become environment variables
    problems = limits.problems()
    if problems:
        if not _REPORTED:  # once in the server's log, not at every rerun
            _REPORTED.append(True)
            print("minidl: bad server settings:\n  " + "\n  ".join(problems), file=sys.stderr)
        st.error("This server's settings are wrong, so it does not run jobs or pages until "
                 "they are fixed (see the README's Deploy section):", icon=":material/error:")
        st.code("\n".join(problems), language=None, wrap_lines=True)
        st.stop()


def main() -> None:
    configure()
    check_limits()
    page = st.navigation([st.Page(f"pages/{name}.py", title=title, icon=icon, default=i == 0)
                          for i, (name, title, icon) in enumerate(PAGES)])
    st.session_state[_RUNNING_PAGE] = True
    try:
        with training.page_run():
            page.run()
    finally:
        st.session_state.pop(_RUNNING_PAGE, None)


def enter() -> None:
    """Call first in every page file: makes sure the page runs under ``main``'s navigation."""
    if st.session_state.get(_RUNNING_PAGE):
        return
    # Started by Streamlit's legacy pages/ router (first request to a fresh server):
    # run the entry point, which resolves the same URL to this page, then stop here.
    main()
    st.stop()


if __name__ == "__main__":  # Streamlit runs this file as __main__ for every script run
    main()
else:  # imported: by `streamlit run`, which finds `app` and serves it; by pages; by tests
    # Streamlit's server with a first load of our own (``ui/server.py``): no legacy pages/
    # router, and page URLs that carry our title and need no base-path probes.
    app = st.App(__file__, lifespan=server.lifespan,
                  routes=server.page_routes([name for name, _, _ in PAGES[1:]], TITLE))
