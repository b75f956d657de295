"""What ``streamlit run streamlit_app.py`` serves besides Streamlit's own routes, so that a
fresh server's first page load is the app's from its first frame.

``streamlit_app.py`` declares ``app = st.App(...)`` with these routes and this lifespan;
``streamlit run`` finds that assignment and serves it (Streamlit's ASGI mode,
``streamlit/web/server/app_discovery.py``).  Two things Streamlit 1.67 does on a first load,
and what we do instead:

1. **The legacy pages/ router.**  A server whose main script has a ``pages/`` folder beside
   it runs its first script run through the v1 router (``_mpa_v1`` in
   ``streamlit/runtime/scriptrunner/script_runner.py``, chosen by the class flag
   ``PagesManager.uses_pages_directory``, ``streamlit/runtime/pages_manager.py``), which sends
   a navigation of raw file names ("streamlit app", "about", …) before our ``st.navigation``
   replaces it.  ``st.navigation`` itself turns that flag off for the rest of the process
   (``streamlit/commands/navigation.py``); ``lifespan`` turns it off once at start-up, before
   any browser connects, so that first run is an ordinary one.

2. **Base-path probes.**  On a page URL such as ``/about`` the frontend cannot tell a page
   from a base URL path, so it probes ``/about/_stcore/health`` and ``host-config`` (two
   404s) before ``/_stcore/…`` (``PD()`` in ``static/static/js/index.*.js``;
   streamlit/streamlit#7074).  It skips the probe when the page sets
   ``window.__streamlit.BACKEND_BASE_URL`` (read from the page, for hosts that embed it): the
   page routes below serve Streamlit's own ``index.html`` with that set to the page's folder,
   which is the app's base whatever prefix a proxy adds.  The same page carries the app's
   title, so the browser tab never reads "Streamlit".
"""

from __future__ import annotations

import html
import re
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from streamlit import config, file_util
from streamlit.runtime.pages_manager import PagesManager

from ui import background

# Every session's script runs in a thread of the server's one Python.  While a class trains,
# ~25 of them redraw; a page opening meanwhile gave the lock up at each of its many small
# torch calls and waited up to the switch interval to get it back (page loads of 3–7 s).
SWITCH_SECONDS = 0.001


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """At start-up: no legacy pages/ router (our entry point calls ``st.navigation``), the
    training service's fork server started in the background (the first Train on a
    fresh server waited ~3 s for it), and Python's thread switch interval cut from 5 ms to
    ``SWITCH_SECONDS``."""
    PagesManager.uses_pages_directory = False
    sys.setswitchinterval(SWITCH_SECONDS)
    threading.Thread(target=background.warm_up, name="fork server", daemon=True).start()
    yield


@cache
def index_html(title: str, page: bool) -> str:
    """Streamlit's ``index.html`` with ``title``; on a ``page`` URL, also the app's base URL
    (the page's folder) for the frontend."""
    index = (Path(file_util.get_static_dir()) / "index.html").read_text(encoding="utf-8")
    head = f"<title>{html.escape(title)}</title>"
    if page:
        head += ('<script>window.__streamlit = {BACKEND_BASE_URL: '
                 'new URL(".", window.location.href).href}</script>')
    return re.sub(r"<title>.*?</title>", lambda _: head, index, count=1, flags=re.S)


def page_routes(url_paths: list[str], title: str) -> list[Route]:
    """Routes for the app's root and each page's URL (``url_paths``, e.g. ``["about"]``),
    under the server's ``server.baseUrlPath``."""
    base = config.get_option("server.baseUrlPath").strip("/")
    root = f"/{base}/" if base else "/"  # with its slash: "./static/…" is under the base

    def endpoint(page: bool):
        async def serve(_request: Request) -> HTMLResponse:
            # Streamlit serves its HTML uncached too: a new Streamlit version's bundle names
            return HTMLResponse(index_html(title, page), headers={"Cache-Control": "no-cache"})
        return serve

    return [Route(root, endpoint(page=False), methods=["GET", "HEAD"]),
            *(Route(root + path, endpoint(page=True), methods=["GET", "HEAD"])
              for path in url_paths)]
