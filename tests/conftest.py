import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import helpers
import pytest
import torch

from minidl.cli import main

# ----------------------------------------------------------------------------------------
# Two test runs: `python -m pytest` (the fast tests, in about a minute) and
# `python -m pytest --all` (CI: the browser, slow, cluster and benchmark tests too).

LONG = ("slow", "browser", "cluster", "benchmark")


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true",
                     help="also run the tests marked " + ", ".join(LONG) + " (what CI runs)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all") or config.getoption("-m"):  # an explicit choice wins
        return
    long = [i for i in items if any(i.get_closest_marker(m) for m in LONG)]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [i for i in items if i not in set(long)]


@pytest.fixture(autouse=True)
def _a_store_of_its_own(tmp_path_factory, monkeypatch):
    """Every test saves jobs under a temporary results root (and the command lines it starts
    inherit it): never in the repository's ``results/`` store."""
    monkeypatch.setenv("MINIDL_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
    monkeypatch.delenv("MINIDL_STORAGE", raising=False)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``run_cli(*args)``: ``main(args)`` here, as ``python -m minidl`` runs it — its exit code
    and what it printed."""
    def run(*args, timeout=None):
        monkeypatch.setenv("MINIDL_STORAGE", "")  # what --storage sets is undone after the test
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit:  # argparse: --help, --version, a bad argument
            code = exit.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return run


@pytest.fixture(autouse=True)
def _no_grad_and_one_thread():
    """minidl must work with autograd globally off; tiny models run fastest on one thread."""
    torch.set_num_threads(1)
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    yield
    torch.set_grad_enabled(previous)


# ----------------------------------------------------------------------------------------
# Browser tests: a live Streamlit server and headless Chromium (Debian's /usr/bin/chromium).
# Shared by every page's browser tests:
#   app_server        session-scoped base URL of one server ("http://127.0.0.1:PORT")
#   fresh_app_servers factory: fresh_app_servers(n) -> n base URLs of servers that have
#                     served nothing yet (for first-request / deep-link checks)
#   start_app_servers the same as a context manager, for fixtures of module scope
#   browser_page      a new Chromium page (1400×1000) per test
#   wait_for_app      wait_for_app(page): blocks until the script run finished
#   artifacts         the test-artifacts/ folder (gitignored) for screenshots
# Without Chromium (or Playwright) these tests skip with the reason; with
# MINIDL_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _unavailable(reason: str, required: str, what: str) -> None:
    """Skip for ``reason`` — or fail, where ``$required`` is 1 (CI: ``what`` must run)."""
    if os.environ.get(required) == "1":
        pytest.fail(f"{reason} — {required}=1, so {what} must run here")
    pytest.skip(reason)


def _browser_unavailable(reason: str) -> None:
    _unavailable(reason, "MINIDL_REQUIRE_BROWSER", "browser tests")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
               "--server.headless", "true", "--server.port", str(port),
               "--browser.gatherUsageStats", "false"]
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / f"streamlit-{port}.log", "w")
    # saved sweeps and studies go to a folder of this server's, not the repository's results/
    env = {**os.environ, "MINIDL_RESULTS_DIR": str(ROOT / "test-artifacts" / f"results-{port}")}
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    process.log_path = log.name
    log.close()  # the child keeps its own descriptor
    return process, f"http://127.0.0.1:{port}"


def _wait_healthy(process: subprocess.Popen, url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}: "
                               f"{Path(process.log_path).read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not become healthy at {url}")
        time.sleep(0.2)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _servers(count: int):
    started = [_start_server() for _ in range(count)]  # start together: imports overlap
    try:
        for process, url in started:
            _wait_healthy(process, url)
        yield [url for _, url in started]
    finally:
        _stop([process for process, _ in started])
        for process, _ in started:
            Path(process.log_path).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def chromium_browser():
    if not Path(CHROMIUM).exists():
        _browser_unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _browser_unavailable("playwright is not installed (pip install -r requirements-dev.txt)")
    # an expectation waits for what it expects, up to the pages' own 30 s: its 5 s default
    # lost the race on a busy machine (full suite beside a CPU hog)
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def app_server(chromium_browser):
    """Base URL of a Streamlit server running streamlit_app.py, shared by the session."""
    with _servers(1) as (url,):
        yield url


@pytest.fixture(scope="session")
def start_app_servers(chromium_browser):
    """``with start_app_servers(n) as urls``: n newly started servers, stopped when the block
    ends (for a fixture of wider scope than a test)."""
    return _servers


@pytest.fixture
def fresh_app_servers(chromium_browser):
    """``fresh_app_servers(n)``: n newly started servers (base URLs), stopped after the test."""
    stack = contextlib.ExitStack()

    def start(count: int = 1) -> list[str]:
        return stack.enter_context(_servers(count))
    with stack:
        yield start


@pytest.fixture
def browser_page(chromium_browser):
    page = helpers.new_page(chromium_browser)
    yield page
    page.context.close()


@pytest.fixture(scope="session")
def wait_for_app():
    def wait(page, timeout: float = 60_000) -> None:
        """Until the app's script run has finished (the status widget says notRunning)."""
        page.wait_for_selector(APP_IDLE, timeout=timeout)
    return wait


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder

