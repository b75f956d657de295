"""Several app replicas behind a real reverse proxy (README: Deploy): two Streamlit servers
behind HAProxy (deploy/haproxy.cfg, sticky by cookie), one PostgreSQL store and one Dask
scheduler with a worker, all started here.  A visitor pinned to one replica launches a
sweep; a visitor pinned to the other sees it listed with its progress moving; a visitor's
session stays on its replica.

Without PostgreSQL, HAProxy or the PostgreSQL driver the test skips with the reason; with
MINIDL_REQUIRE_SERVICES=1 (set by .ci/run) it fails instead.
"""

import contextlib
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import helpers
import pytest
from conftest import _free_port, _unavailable

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "MINIDL_REPLICA"  # the proxy's, naming a visitor's replica
pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.xdist_group("replicas")]


def _services_unavailable(reason: str) -> None:
    _unavailable(reason, "MINIDL_REQUIRE_SERVICES", "the replicas test")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _postgres_ready(port: int) -> bool:
    import psycopg
    try:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2
                        ).close()
        return True
    except psycopg.OperationalError:
        return False


@contextlib.contextmanager
def _processes():
    """``start(name, command, **popen)``: processes stopped (SIGTERM, then SIGKILL) when the
    block ends, each with its output in test-artifacts/replicas-<name>.log."""
    started: list[subprocess.Popen] = []
    (ROOT / "test-artifacts").mkdir(exist_ok=True)

    def start(name: str, command: list[str], **popen) -> subprocess.Popen:
        with open(ROOT / "test-artifacts" / f"replicas-{name}.log", "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, **popen)
        started.append(process)
        return process
    try:
        yield start
    finally:
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def replicas(chromium_browser):
    """PostgreSQL, a Dask scheduler and worker, replicas "a" and "b" of the app (public mode,
    each its own results folder) and HAProxy in front of them; ``.proxy`` (the base URL) and
    ``.pids`` (each replica's server process)."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if not initdb:
        _services_unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    if not haproxy:
        _services_unavailable("HAProxy is not installed (apt-get install haproxy)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _services_unavailable("the PostgreSQL driver is not installed (pip install -r requirements-dev.txt)")
    bin_dir = Path(initdb[-1]).parent
    # PostgreSQL refuses to run as root: its data then belongs to the postgres user
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="minidl-replicas-"))
    ports = SimpleNamespace(**{name: _free_port()
                               for name in ("db", "dask", "a", "b", "proxy")})
    try:
        if as_postgres:
            shutil.chown(data, "postgres")
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data / "db"),
                        "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True)
        with _processes() as start:
            start("postgres", [*as_postgres, str(bin_dir / "postgres"), "-D", str(data / "db"),
                               "-p", str(ports.db), "-k", str(data), "-F",
                               "-c", "listen_addresses=127.0.0.1"])
            code = {"cwd": ROOT, "env": {**os.environ, "PYTHONPATH": str(ROOT)}}
            scheduler = f"tcp://127.0.0.1:{ports.dask}"
            start("dask-scheduler", [sys.executable, "-m", "dask", "scheduler", "--host",
                                     "127.0.0.1", "--port", str(ports.dask), "--no-dashboard"],
                  **code)
            start("dask-worker", [sys.executable, "-m", "dask", "worker", scheduler,
                                  "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                  **code)
            pids = {}
            for name in ("a", "b"):
                env = {**os.environ, "MINIDL_PUBLIC": "1", "MINIDL_DASK_SCHEDULER": scheduler,
                       "MINIDL_STORAGE": f"postgresql+psycopg://postgres@127.0.0.1:{ports.db}"
                                         "/postgres",
                       "MINIDL_RESULTS_DIR": str(data / f"results-{name}")}
                pids[name] = start(f"app-{name}", [
                    sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
                    "--server.headless", "true", "--server.address", "127.0.0.1",
                    "--server.port", str(getattr(ports, name)),
                    "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env).pid
            helpers.wait_until(lambda: _postgres_ready(ports.db), 60)
            for name in ("a", "b"):
                helpers.wait_until(lambda name=name: _answers(
                    f"http://127.0.0.1:{getattr(ports, name)}/_stcore/health"), 90)
            # the deploy's proxy settings, with these two replicas as its backend
            backend = data / "replicas.cfg"
            backend.write_text(
                "backend replicas from app\n"
                f"    cookie {COOKIE} insert indirect nocache httponly\n"
                f"    server a 127.0.0.1:{ports.a} cookie a\n"
                f"    server b 127.0.0.1:{ports.b} cookie b\n")
            start("haproxy", [haproxy, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg"),
                              "-f", str(backend)],
                  env={**os.environ, "PROXY_BIND": f"127.0.0.1:{ports.proxy}"})
            proxy = f"http://127.0.0.1:{ports.proxy}"
            helpers.wait_until(lambda: _answers(f"{proxy}/_stcore/health"), 30)
            yield SimpleNamespace(proxy=proxy, pids=pids)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def job_processes(parent: int) -> list[str]:
    """The folders of the job processes (``python -m minidl run-job``) that ``parent``
    started and that still run."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            ppid = int(Path(stat).read_text().rsplit(")", 1)[1].split()[1])
            command = Path(stat).with_name("cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if ppid == parent and b"run-job" in command:
            out.append(command[command.index(b"run-job") + 2].decode())
    return out


def visitor(browser, replica: str | None = None, proxy: str = ""):
    """A new browser (its own cookies): a first-time visitor, or one the proxy's cookie
    already pins to ``replica``."""
    page = helpers.new_page(browser)
    if replica is not None:
        page.context.add_cookies([{"name": COOKIE, "value": replica, "url": proxy}])
    return page


def replica_of(page) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == COOKIE), None)


def steps_done(page) -> int | None:
    """The optimizer steps the page's progress bar says are done (None without a number)."""
    bar = page.locator("[data-testid='stProgress']")
    match = re.search(r"Training: ([\d,]+) of", bar.inner_text()) if bar.count() else None
    return int(match.group(1).replace(",", "")) if match else None


def test_a_sweep_launched_through_one_replica_is_watched_live_through_the_other(
        replicas, chromium_browser, wait_for_app, artifacts):
    from playwright.sync_api import expect

    ann = visitor(chromium_browser)
    bob = None
    try:
        ann.goto(f"{replicas.proxy}/cross_validation")
        wait_for_app(ann)
        home = replica_of(ann)  # the proxy chose Ann's replica and pinned her there
        assert home in ("a", "b")
        other = "b" if home == "a" else "a"
        # a sweep of six populations (one per batch size) that returns every few seconds
        expect(ann.get_by_role("button", name="Remove ReLU")).to_be_visible()
        # each change waits for the page to show it: the idle state alone could still be
        # the one before the rerun (CI once launched 3 configurations of 6, once 3 grids)
        helpers.remove_chips(ann, ("ReLU", "Sigmoid", "Adam", "RMSProp"), wait_for_app)
        steps = helpers.metric(ann, "Optimizer steps")
        for label, value in (("Folds", "2"), ("Epochs", "60")):
            before = steps.inner_text()
            field = ann.get_by_role("spinbutton", name=label)
            field.fill(value)
            field.press("Enter")
            expect(steps).not_to_have_text(before)
            wait_for_app(ann)
        configurations = helpers.metric(ann, "Configurations")
        for label, value in (("learning rate", "0.1"), ("momentum", "0"),
                             ("batch size", "1,2,3,4,5,6")):
            before = configurations.inner_text()
            field = ann.get_by_role("textbox", name=label, exact=True)
            field.fill(value)
            field.press("Enter")
            expect(configurations).not_to_have_text(before)  # each value narrows the grid
            wait_for_app(ann)
        expect(configurations).to_have_text("6")
        ann.get_by_role("button", name="Launch").click()

        # her session is on her replica: its server, not the other, started the job's process
        helpers.wait_until(lambda: job_processes(replicas.pids[home]), 60)
        [folder] = job_processes(replicas.pids[home])
        assert job_processes(replicas.pids[other]) == []
        name = Path(folder).name

        # Ann's reloads stay on her replica: only the server whose line holds the job offers
        # its owner Cancel (on the other she would read "Trained by another process")
        for _ in range(3):
            ann.reload()
            wait_for_app(ann)
            expect(ann.get_by_role("button", name="Cancel")).to_be_visible()
            assert replica_of(ann) == home
        ann.screenshot(path=artifacts / "replicas-launched-on-one.png")

        # Bob, pinned to the other replica, sees that sweep listed and its progress move
        bob = visitor(chromium_browser, other, replicas.proxy)
        bob.goto(f"{replicas.proxy}/cross_validation")
        wait_for_app(bob)
        assert replica_of(bob) == other
        expect(bob.get_by_text(name.rsplit("-", 1)[-1]).first).to_be_visible()  # its label
        # (a waiting job says so twice: in its status and in the line under it)
        expect(bob.get_by_text(re.compile("Trained by another process|Waiting in another "
                                          "server's line")).first).to_be_visible()
        seen = []

        def moved() -> bool:
            done = steps_done(bob)
            if done is not None and (not seen or done != seen[-1]):
                seen.append(done)
            return len(seen) >= 2
        helpers.wait_until(moved, 60)
        assert seen == sorted(seen) and seen[-1] > 0, seen
        bob.screenshot(path=artifacts / "replicas-watched-on-the-other.png")
        # and, once it ends, its results
        expect(bob.get_by_text("Finished: 6 of 6 configurations")).to_be_visible(
            timeout=60_000)
        expect(bob.get_by_role("heading", name="Optimal settings")).to_be_visible()
        helpers.wait_until(lambda: not job_processes(replicas.pids[home]), 30)  # it exits
    finally:
        for page in (ann, bob):
            if page is not None:
                page.context.close()
