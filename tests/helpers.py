"""Helpers shared by test modules."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from minidl import jobs
from minidl.experiments import sweeps
from minidl.jobs import limits, runner

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def open_app(query: dict[str, str], page: str | None = None) -> AppTest:
    """The app opened with the URL ``query`` (on ``page``, e.g. "pages/compare.py", else
    the first page), after its first run, which must not have raised."""
    at = AppTest.from_file(APP, default_timeout=60)
    for name, value in query.items():
        at.query_params[name] = value
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def settle(at: AppTest, trainer: str, timeout: float = 30.0) -> AppTest:
    """Wait until the session's background trainer (Session State key ``trainer``) stops
    (a Step done, the budget used up), then let the page redraw as the browser's timer
    would."""
    wait_until(lambda: at.session_state[trainer].state == "idle", timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def assert_fits(page, selector: str, width: int) -> None:
    """Every element of ``selector`` on the Playwright ``page`` lies within ``width`` pixels,
    and the page does not scroll sideways."""
    for element in page.locator(selector).all():
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh results root (never the repository's) and the default caps; returns the folder
    sweeps are saved in (``sweeps.SWEEP.root()``: ``<root>/sweeps``), not created yet.

    A module makes it its fixture: ``results_dir = pytest.fixture(autouse=True)(helpers.results_dir)``.
    """
    monkeypatch.setenv(jobs.RESULTS_ENV, str(tmp_path))
    monkeypatch.delenv("MINIDL_STORAGE", raising=False)  # the store in that root
    for name in (limits.PUBLIC_ENV, *limits.TABLE):  # the local defaults
        monkeypatch.delenv(name, raising=False)
    return sweeps.SWEEP.root()


def tiny_saved_sweep() -> Path:
    """A finished sweep of one pair (Tanh + SGD, two learning rates) in seconds; its folder."""
    spec = sweeps.SweepSpec(activations=("tanh",), optimizers=("sgd",),
                            grids={"sgd": {"lr": [0.05, 0.5], "batch_size": [50]}},
                            folds=2, epochs=1, n_train=100)
    folder = jobs.create(sweeps.SWEEP, spec)
    assert runner.Runner(sweeps.SWEEP, folder).run().status == "finished"
    return folder


def cancel_after(job: runner.Runner, steps: int) -> runner.Runner:
    """Cancel as soon as ``steps`` optimizer steps are done (like a visitor pressing Cancel)."""
    report = job._report

    def reporting(done: int, total: int) -> bool:
        keep_going = report(done, total)
        if done >= steps:
            job.cancel()
        return keep_going
    job._report = reporting
    return job


def new_page(browser, width: int = 1400, height: int = 1000):
    """A Chromium page in a context of its own (close it with ``page.context.close()``),
    whose actions wait up to 30 s."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(30_000)
    return page


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition()`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def set_job(folder: Path, **changes) -> None:
    """Change a saved job's row in the store (its status, creation time, owner…), as another
    process — or a crash, or a hand edit — leaves it."""
    job = jobs.find(folder)
    job.store.update(job.id, **changes)


def again_until(act, check, tries: int = 3, timeout: float = 10_000) -> int:
    """``act(attempt)``, then ``check(timeout)`` (a Playwright expectation, in ms); while it
    fails, act again, as a person would when a click or a pointer went unseen, up to ``tries``
    times in all (the last failure is raised).  Returns how many times it acted."""
    for attempt in range(tries):
        act(attempt)
        try:
            check(timeout)
            return attempt + 1
        except AssertionError:
            if attempt == tries - 1:
                raise
    raise ValueError("tries must be at least 1")


def press_train(page, started=None) -> None:
    """Press Train and wait until the run has started: the Pause button shows, or
    ``started`` (a locator: what a run that ends at once shows).  If neither shows 20 s after
    a click, press again: CI once lost a click at a page's load (epoch 0 after 120 s); the
    cause is not known."""
    from playwright.sync_api import expect

    pause = page.get_by_role("button", name="Pause")
    started = pause if started is None else pause.or_(started)
    again_until(lambda _: page.get_by_role("button", name="Train", exact=True).click(),
                lambda ms: expect(started.first).to_be_visible(timeout=ms), timeout=20_000)


def train_to_the_budget(page, wait_for_app) -> None:
    """Press Train on the page and wait until the epoch budget is used up and the page has
    settled."""
    from playwright.sync_api import expect

    press_train(page, page.get_by_text("Epoch budget reached"))
    expect(page.get_by_text("Epoch budget reached")).to_be_visible(timeout=120_000)
    wait_for_app(page)
    page.wait_for_timeout(1000)


def remove_chips(page, names, wait_for_app) -> None:
    """Click each multiselect chip's "Remove NAME" button and wait until it has gone: the
    app's idle state alone could still be the one before the rerun (CI once kept three)."""
    from playwright.sync_api import expect

    for name in names:
        page.get_by_role("button", name=f"Remove {name}").click()
        expect(page.get_by_role("button", name=f"Remove {name}")).to_have_count(0)
        wait_for_app(page)


def download(page, button: str, tries: int = 3):
    """Click the download button named ``button`` and return Playwright's download.  If no
    file comes, click again, as a person would.  CI once got none; a likely way: the file
    Streamlit makes at the click belongs to no session, and the ends of two script runs
    anywhere on the server delete it, which on a busy server can come before the fetch."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        try:
            with page.expect_download(timeout=20_000) as download:
                page.get_by_role("button", name=button).click()
            return download.value
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise


def metric(page, label: str):
    """The value element of the st.metric labelled ``label``."""
    return page.locator("[data-testid='stMetric']").filter(
        has=page.get_by_text(label, exact=True)).locator("[data-testid='stMetricValue']")
