"""The app in a real headless Chromium: page URLs on a cold server, live training, the URL.

Fixtures (``app_server``, ``fresh_app_servers``, ``browser_page``, ``wait_for_app``,
``artifacts``) live in ``conftest.py``.  Screenshots go to ``test-artifacts/``.
"""

import re
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlparse

import helpers
import pytest
from helpers import metric

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixtures skip (or fail under MINIDL_REQUIRE_BROWSER=1)
    expect = None

import streamlit_app

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
ROOT = Path(__file__).resolve().parent.parent

# (URL path, heading the page shows)
PAGE_URLS = [("", "Playground"), ("compare", "Compare"), ("cross_validation", "Cross-validation"),
             ("reproduce", "Reproduce"), ("about", "About minidl")]
NAV_TITLES = [title for _, title, _ in streamlit_app.PAGES]


def nav_label(text: str) -> str:
    return text.split("\n")[-1]  # the link's text starts with its icon's name


def metric_value(page, label: str) -> str:
    return metric(page, label).inner_text()


def test_playground_trains_the_default_network_to_90_percent_test_accuracy(
        app_server, browser_page, wait_for_app, artifacts):
    page = browser_page
    page.goto(app_server)
    wait_for_app(page)
    expect(metric(page, "Epoch")).to_have_text("0 / 200")
    expect(metric(page, "Parameters")).to_have_text("74")     # 2-6-6-2, the app's default
    page.screenshot(path=artifacts / "playground-before-training.png")

    helpers.press_train(page)
    deadline = time.monotonic() + 150
    accuracy = 0.0
    while time.monotonic() < deadline:
        accuracy = float(metric_value(page, "Test accuracy").rstrip("%"))
        if accuracy >= 90.0:
            break
        time.sleep(0.25)
    page.screenshot(path=artifacts / "playground-trained.png")
    epoch = int(metric_value(page, "Epoch").split("/")[0])
    page.get_by_role("button", name="Pause").click()
    # the page's run after the click redraws the buttons (beside a busy machine's other
    # tests it once took over 30 s)
    page.get_by_role("button", name="Train", exact=True).wait_for(timeout=90_000)
    assert accuracy >= 90.0, f"test accuracy {accuracy}% after {epoch} epochs"
    assert page.locator("[data-testid='stException']").count() == 0
    # the boundary chart is drawn (a Vega view with the disk's points)
    # (expect retries: after Pause the charts may still be re-mounting)
    # the diagram, the boundary, loss, accuracy and the layers' health
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(5)


def test_url_restores_settings_and_follows_changes(app_server, browser_page, wait_for_app,
                                                   artifacts):
    page = browser_page
    page.goto(f"{app_server}/?optimizer=adam&lr=0.003&layers=2&width=8&activation=bogus")
    wait_for_app(page)
    # (expect(...) retries: the script run being over does not mean everything is painted)
    sidebar = page.locator("[data-testid='stSidebar']")
    bar = page.locator(".st-key-pg_bar")  # the compact bar above the diagram
    expect(sidebar.get_by_role("combobox", name="optimizer")).to_have_value("Adam")
    expect(bar.get_by_role("combobox", name="activation")).to_have_value("Tanh")
    expect(sidebar.get_by_role("spinbutton", name="β₁")).to_have_value("0.900")  # Adam's own
    expect(sidebar.get_by_role("slider", name="momentum")).to_have_count(0)       # not SGD's
    expect(page.locator("[data-testid='stAlertContentWarning']")).to_contain_text(
        "could not be used")
    expect(page.locator("[data-testid='stCode']")).to_contain_text("activation=bogus")
    # 2 × 8 tanh network: (2·8+8) + (8·8+8) + (8·2+2) parameters
    expect(metric(page, "Parameters")).to_have_text(["114"])
    query = parse_qs(urlparse(page.url).query)
    # (an old link's layers=2&width=8 reads, and is rewritten, as per-layer widths)
    assert query == {"optimizer": ["adam"], "lr": ["0.003"], "hidden": ["8,8"]}

    # one layer less rewrites the URL and (architecture) starts a new network
    layers = bar.get_by_role("spinbutton", name="hidden layers")
    expect(layers).to_have_value("2")
    layers.fill("1")
    layers.press("Enter")
    page.wait_for_function("() => location.search.includes('hidden=8&')"
                           " || location.search.endsWith('hidden=8')")
    expect(page.locator("[data-testid='stToast']")).to_contain_text(
        "hidden layer widths: 2 × 8 → 1 × 8")
    # a toast, over the page's corner: not in the page's flow, where it pushed the rest down
    assert page.locator("[data-testid='stMainBlockContainer'] [data-testid='stToast']"
                        ).count() == 0
    # (a list: waits until exactly one such metric shows it, not a fading old one beside it)
    expect(metric(page, "Parameters")).to_have_text(["42"])
    page.screenshot(path=artifacts / "playground-from-url.png")


def test_reproduce_page_runs_a_small_study_to_its_figures(app_server, browser_page,
                                                          wait_for_app, artifacts):
    page = browser_page
    page.goto(f"{app_server}/reproduce")
    wait_for_app(page)
    for label, value in (("Runs per pair", "2"), ("Epochs", "2")):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
        wait_for_app(page)
    page.get_by_role("button", name="Run study").click()
    # its caption, Fig. 2 and Fig. 3 appear when the study has finished (until it starts,
    # the README's study shipped in docs/results shows its own)
    expect(page.get_by_text("2 runs per pair, 2 epochs")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("Mean test accuracy ± 1 SE over runs").first).to_be_visible()
    # Fig. 2, Fig. 3, and below them the README's ablation (shipped in docs/results)
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(3, timeout=30_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    page.locator("[data-testid='stVegaLiteChart']").first.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "reproduce-results.png")
    page.get_by_role("heading", name="Why Table I does not carry over as written") \
        .scroll_into_view_if_needed()
    expect(page.get_by_text("Table I under each convention, 400 epochs")).to_be_visible()
    page.screenshot(path=artifacts / "reproduce-ablation.png")


def test_cross_validation_page_runs_a_tiny_sweep_to_its_tables(app_server, browser_page,
                                                               wait_for_app, artifacts):
    page = browser_page
    page.goto(f"{app_server}/cross_validation")
    wait_for_app(page)
    # the "New sweep" expander is collapsed once sweeps are saved (by other tests too):
    # read its state rather than the visibility of a widget that may not be painted yet
    details = page.locator("[data-testid='stExpander'] details").first
    details.wait_for(state="attached")
    if details.get_attribute("open") is None:
        page.get_by_text("New sweep", exact=True).click()
    expect(page.get_by_role("button", name="Remove ReLU")).to_be_visible()
    # Tanh + Adam only: remove the other chips of the two multiselects
    helpers.remove_chips(page, ("ReLU", "Sigmoid", "SGD", "RMSProp"), wait_for_app)
    for label, value in (("Folds", "2"), ("Epochs", "1")):
        before = metric_value(page, "Optimizer steps")
        field = page.get_by_role("spinbutton", name=label)
        field.fill(value)
        field.press("Enter")
        expect(metric(page, "Optimizer steps")).not_to_have_text(before)
        wait_for_app(page)
    # the grid's inputs are the settings table's: labels from it, weight decay included
    for label, value in (("learning rate", "0.01"), ("β₁", "0.9"), ("β₂", "0.999"),
                         ("ε", "1e-08"), ("batch size", "50")):
        field = page.get_by_role("textbox", name=label, exact=True)
        field.fill(value)
        field.press("Enter")
        wait_for_app(page)
    expect(page.get_by_role("textbox", name="weight decay (L2)")).to_have_value("0.0")
    expect(metric(page, "Networks")).to_have_text("2")
    expect(metric(page, "Optimizer steps")).to_have_text("20")  # 2 folds × 10 steps (batch 50)
    page.screenshot(path=artifacts / "cross-validation-grid.png")

    page.get_by_role("button", name="Launch").click()
    expect(page.get_by_text("Finished: 1 of 1 configurations").first).to_be_visible(
        timeout=120_000)
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(2, timeout=30_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    expect(page.get_by_role("heading", name="All configurations")).to_be_visible()
    page.get_by_role("heading", name="Sweeps").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "cross-validation-results.png")

    # one click on the optimal configuration's button opens exactly one new tab: the
    # Playground with that configuration
    context, before = page.context, len(page.context.pages)
    button = page.get_by_role("link", name=re.compile(r"Adam \+ Tanh · lr 0\.01"))
    with context.expect_page() as opened:
        button.click()
    playground = opened.value
    wait_for_app(playground)
    query = parse_qs(urlparse(playground.url).query)
    # the Playground's URL spells out what differs from its defaults (Tanh, lr 0.01)
    assert query["optimizer"] == ["adam"] and query.get("activation", ["tanh"]) == ["tanh"]
    assert query.get("lr", ["0.01"]) == ["0.01"] and query["batch_size"] == ["50"]
    assert query["epochs"] == ["1"]
    assert playground.locator("[data-testid='stAlertContentWarning']").count() == 0
    assert urlparse(playground.url).path in ("", "/")  # the Playground, at the app's root
    page.wait_for_timeout(1000)  # a second tab would have opened by now
    assert len(context.pages) == before + 1
    playground.close()


def test_a_crafted_link_renders_as_plain_text(app_server, browser_page, wait_for_app,
                                              artifacts):
    """Backticks, links, images and headings in a link's values stay text on the page."""
    page = browser_page
    crafted = quote("`](https://evil.example) ## Owned ![x](https://evil.example/i.png)")
    junk = "&".join(f"junk{i}=1" for i in range(30))
    page.goto(f"{app_server}/?lr={crafted}&{junk}")
    wait_for_app(page)
    expect(page.locator("[data-testid='stAlertContentWarning']")).to_have_count(1)
    expect(page.locator("[data-testid='stCode']").first).to_contain_text("lr=`](https://evil")
    assert page.locator("a[href*='evil'], img[src*='evil']").count() == 0
    assert page.get_by_role("heading", name="Owned").count() == 0
    page.screenshot(path=artifacts / "playground-crafted-link.png")


def test_a_public_server_shows_each_visitor_their_own_controls_and_a_damaged_job(
        fresh_app_servers, chromium_browser, wait_for_app, artifacts, monkeypatch):
    """Two visitors of a public server: the one who launched a sweep may cancel it and cannot
    launch another; the other watches without controls; a damaged sweep is a message."""
    monkeypatch.setenv("MINIDL_PUBLIC", "1")
    [url] = fresh_app_servers(1)
    results = ROOT / "test-artifacts" / f"results-{url.rsplit(':', 1)[1]}"
    damaged = results / "sweeps" / "20200101-000000-abcdef"
    damaged.mkdir(parents=True)
    (damaged / "sweep.json").write_text('{"folds": "## five"}')
    pages = [chromium_browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
             for _ in range(2)]
    first, second = pages
    first.goto(f"{url}/cross_validation")
    wait_for_app(first)
    expect(first.get_by_text("damaged: sweep.json: folds must be an integer")).to_be_visible()
    expect(first.get_by_role("heading", name="five")).to_have_count(0)  # not Markdown
    first.get_by_text("New sweep", exact=True).click()
    field = first.get_by_role("spinbutton", name="Epochs")
    field.fill("5")  # the default grid at 5 epochs fits the public cap
    field.press("Enter")
    wait_for_app(first)
    expect(first.get_by_text("shared public demo")).to_be_visible()
    first.get_by_role("button", name="Launch").click()
    expect(first.get_by_text("Training:")).to_be_visible(timeout=60_000)
    expect(first.get_by_role("button", name="Cancel")).to_be_visible()
    # the form is closed while this visitor's job is in the line; opened, it says why
    first.get_by_text("New sweep (one job at a time: yours is in the line)").click()
    expect(first.get_by_role("button", name="Launch")).to_be_disabled()
    expect(first.get_by_text("You already have 1 job running or waiting")).to_be_visible()

    second.goto(f"{url}/cross_validation")
    wait_for_app(second)
    expect(second.get_by_text("Training:")).to_be_visible(timeout=30_000)
    expect(second.get_by_text("Started by another visitor")).to_be_visible()
    expect(second.get_by_role("button", name="Cancel")).to_have_count(0)
    second.screenshot(path=artifacts / "public-other-visitor.png")

    first.get_by_role("button", name="Cancel").click()
    expect(first.get_by_text("Cancelled: ")).to_be_visible(timeout=60_000)
    assert all(p.locator("[data-testid='stException']").count() == 0 for p in pages)
    first.screenshot(path=artifacts / "public-cancelled.png")
    for p in pages:
        p.context.close()


# every label the sidebar's navigation ever shows, and every title the tab ever has, recorded
# from the first frame on
RECORD_NAV = """
window.__navSeen = []; window.__titlesSeen = [];
new MutationObserver(() => {
  for (const a of document.querySelectorAll("[data-testid='stSidebarNavLink']"))
    if (!window.__navSeen.includes(a.innerText)) window.__navSeen.push(a.innerText);
  if (document.title && !window.__titlesSeen.includes(document.title))
    window.__titlesSeen.push(document.title);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def first_loads(start_app_servers, chromium_browser, wait_for_app, artifacts):
    """Every page's URL, each the first request to a fresh server: what each page showed
    (``pages``), the navigation labels and tab titles shown from the first frame on, the
    browser console's warnings and errors, and the responses that failed."""
    page = helpers.new_page(chromium_browser)
    seen, titles, console, failed, pages = set(), set(), [], [], {}
    page.on("console", lambda m: m.type in ("warning", "error")
            and console.append(f"{urlparse(page.url).path}: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    page.add_init_script(RECORD_NAV)
    with start_app_servers(len(PAGE_URLS)) as servers:
        for base, (path, heading) in zip(servers, PAGE_URLS):
            page.goto(f"{base}/{path}")
            wait_for_app(page)
            expect(page.get_by_role("heading", name=heading).first).to_be_visible()
            page.screenshot(path=artifacts / f"page-{path or 'playground'}-cold.png")
            links = page.locator("[data-testid='stSidebarNav'] "
                                 "[data-testid='stSidebarNavLink']")
            pages[path] = SimpleNamespace(
                nav=[nav_label(text) for text in links.all_inner_texts()],
                current=nav_label(links.and_(page.locator("[aria-current='page']")).inner_text()),
                path=urlparse(page.url).path,
                exceptions=page.locator("[data-testid='stException']").count(),
                width=page.locator("[data-testid='stMain'] [data-testid='stMainBlockContainer']"
                                   ).bounding_box()["width"])
            seen |= {nav_label(text) for text in page.evaluate("window.__navSeen")}
            titles |= set(page.evaluate("window.__titlesSeen"))
        page.context.close()  # before its server stops (the socket's close is no warning of the app)
    return SimpleNamespace(pages=pages, seen=seen, titles=titles, console=console, failed=failed)


def test_every_page_url_works_as_the_first_request_to_a_fresh_server(first_loads):
    """One test, not four: xdist spread four over both workers, and each started its five
    servers (pytest 9 ignores xdist's groups)."""
    for path, _ in PAGE_URLS:
        load = first_loads.pages[path]
        # the shared navigation, not the legacy pages/ router's file list
        assert load.nav == NAV_TITLES, path
        assert load.current == NAV_TITLES[[p for p, _ in PAGE_URLS].index(path)]
        assert load.path == f"/{path}"
        assert load.exceptions == 0, path
        assert load.width > 900, path  # wide layout from the entry point's page config
    # nothing warned in the console
    warnings = [m for m in first_loads.console if "Failed to load resource" not in m]
    assert not warnings, "\n".join(warnings)
    # the app's title and navigation labels from the first frame: not the legacy pages/
    # router's file names ("streamlit app", "about", …), nor the tab title "Streamlit" or a
    # file name (``ui/server.py``)
    assert first_loads.seen <= set(NAV_TITLES), \
        f"the navigation showed {sorted(first_loads.seen - set(NAV_TITLES))}"
    assert first_loads.titles == {streamlit_app.TITLE}, f"the tab showed {first_loads.titles}"
    # a deep link requests nothing that is not found: no base-path probes such as
    # ``/about/_stcore/health`` (streamlit/streamlit#7074): the page tells the frontend its
    # base URL (``ui/server.py``)
    assert not first_loads.failed, "\n".join(first_loads.failed)
