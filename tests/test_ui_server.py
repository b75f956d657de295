"""``ui/server.py``: what ``streamlit run streamlit_app.py`` serves besides Streamlit's routes.

The browser tests check the first load itself (``test_browser.py``, ``first_loads``); these
check, without a browser, the parts of Streamlit 1.67 it relies on, so that an upgrade that
moves them fails here by name.
"""

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from streamlit import file_util
from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.server.app_discovery import discover_asgi_app

import streamlit_app
from ui import background, server

ROOT = Path(__file__).resolve().parent.parent


def run(coroutine):
    """``coroutine``'s result, on an event loop of its own thread: the browser tests' Playwright
    may be running one in this thread."""
    out = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return out[0]


def test_streamlit_run_serves_the_entry_points_app():
    found = discover_asgi_app(ROOT / "streamlit_app.py")
    assert found.is_asgi_app and found.import_string == "streamlit_app:app"


def test_the_lifespan_turns_the_legacy_pages_router_off(monkeypatch):
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)  # as on a fresh server
    monkeypatch.setattr(background, "warm_up", lambda: None)  # no fork server in this process

    async def start() -> None:
        async with server.lifespan(None):
            pass
    run(start())
    assert PagesManager.uses_pages_directory is False


@pytest.mark.slow
def test_the_lifespan_starts_the_training_processes_fork_server():
    # in a process of its own, which has no fork server yet (this one may have, from a test)
    script = """
import asyncio, os, time
from ui import background, server

def fork_servers():
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"forkserver" in command:
            found.append(entry)
    return found

async def start():
    async with server.lifespan(None):
        deadline = time.monotonic() + 60
        while not fork_servers():
            assert time.monotonic() < deadline, "no fork server"
            await asyncio.sleep(0.05)
asyncio.run(start())
print("started")
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip() == "started", out.stderr[-2000:]


def test_a_page_url_gets_streamlits_index_with_our_title_and_base_url():
    routes = server.page_routes(["about", "compare"], "minidl playground")
    assert [route.path for route in routes] == ["/", "/about", "/compare"]  # no other URL
    pages = {route.path: run(route.endpoint(None)) for route in routes}
    for path in ("/about", "/compare"):
        assert pages[path].status_code == 200 and pages[path].headers["cache-control"] == "no-cache"
        html = pages[path].body.decode()
        assert "<title>minidl playground</title>" in html
        assert "window.__streamlit = {BACKEND_BASE_URL:" in html
        assert "./static/js/index." in html  # Streamlit's own bundle
    root = pages["/"].body.decode()  # the root is its own base: nothing to tell the frontend
    assert "<title>minidl playground</title>" in root and "__streamlit" not in root


def test_under_a_base_url_path_the_routes_are_under_it_and_the_root_keeps_its_slash(
        monkeypatch):
    """(``./static/js/…`` in the HTML must resolve under the base: ``/mini/``, not ``/mini``.)"""
    monkeypatch.setattr(server.config, "get_option",
                        lambda key: "/mini/" if key == "server.baseUrlPath" else None)
    assert [route.path for route in server.page_routes(["about"], "minidl playground")] == \
        ["/mini/", "/mini/about"]


def test_streamlits_frontend_still_reads_the_base_url_it_is_given():
    """``window.__streamlit.BACKEND_BASE_URL``: with it, the frontend probes no page path
    as a possible base path (``PD()`` in the bundle; streamlit/streamlit#7074)."""
    bundles = (Path(file_util.get_static_dir()) / "static" / "js").glob("index.*.js")
    assert any("window.__streamlit" in b.read_text() and "BACKEND_BASE_URL" in b.read_text()
               for b in bundles)


def test_the_entry_point_serves_every_page_but_the_default_at_its_own_path():
    paths = [route.path for route in streamlit_app.app._user_routes]
    assert paths == ["/", *(f"/{name}" for name, _, _ in streamlit_app.PAGES[1:])]
