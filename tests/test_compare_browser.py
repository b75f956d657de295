"""The Compare page in a real headless Chromium: a race in progress and finished, a cold
deep link, a phone-width screen (issue 11).  Screenshots go to ``test-artifacts/``."""

import time
from urllib.parse import parse_qsl, urlparse

import helpers
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixtures skip (or fail under MINIDL_REQUIRE_BROWSER=1)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

EPOCHS = 100  # long enough to pause mid-race on any machine, short enough to finish here
TILE = "[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img"


def epoch(page) -> int:
    text = page.locator("[data-testid='stMetric']").filter(
        has=page.get_by_text("Epoch", exact=True)).locator(
        "[data-testid='stMetricValue']").first.inner_text()
    return int(text.split("/")[0])


def wait_for_epoch(page, at_least: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and epoch(page) < at_least:
        time.sleep(0.3)
    assert epoch(page) >= at_least


def test_the_nine_pairs_race_live_and_finish_with_a_winner(app_server, browser_page,
                                                          wait_for_app, artifacts):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{app_server}/compare?n_train=150&n_test=150&epochs={EPOCHS}")
    wait_for_app(page)
    expect(page.locator("[data-testid='stImage'] img")).to_have_count(9)
    helpers.press_train(page)
    wait_for_epoch(page, 4)
    # paused mid-race, however fast the machine: a fast CI ran 40 epochs in ~1 s
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Train", exact=True).wait_for()
    wait_for_app(page)
    page.wait_for_timeout(1200)  # the curves' slower redraw
    page.screenshot(path=artifacts / "compare-racing.png", full_page=True)
    paused_at = epoch(page)
    assert 4 <= paused_at < EPOCHS
    page.wait_for_timeout(1000)
    assert epoch(page) == paused_at  # paused means paused
    helpers.press_train(page, page.get_by_text(f"Race over: {EPOCHS} epochs. Winner:"))
    expect(page.get_by_text(f"Race over: {EPOCHS} epochs. Winner:")).to_be_visible(
        timeout=150_000)
    wait_for_app(page)
    page.wait_for_timeout(1500)
    page.screenshot(path=artifacts / "compare-finished.png", full_page=True)
    page.locator("[data-testid='stVegaLiteChart']").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=artifacts / "compare-finished-curves.png")
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(2)
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_disabled()
    # the race's URL restores it; each contestant's button opens the Playground
    query = dict(parse_qsl(urlparse(page.url).query))
    assert query["epochs"] == str(EPOCHS) and query["n_train"] == "150"
    links = page.locator("[data-testid='stLinkButton'] a[href]")
    hrefs = list(dict.fromkeys(a.get_attribute("href") for a in links.all()))
    assert len(hrefs) == 9  # one per contestant, each its own settings
    first = hrefs[0]
    assert links.first.get_attribute("target") == "_blank"  # one click, one new tab
    assert urlparse(first).path in ("/", "") and "activation=relu" in first
    page.goto(first)  # the first contestant, SGD + ReLU at lr 0.001, in the Playground
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()
    expect(page.locator("[data-testid='stAlert']")).to_have_count(0)  # no link warnings
    assert dict(parse_qsl(urlparse(page.url).query)) == dict(parse_qsl(urlparse(first).query))


def test_a_diverging_contestant_is_shown_and_the_others_race_on(app_server, browser_page,
                                                               wait_for_app, artifacts):
    page = browser_page
    page.goto(f"{app_server}/compare?preset=custom&n_train=200&n_test=200&epochs=6"
              "&contestants=lr%3D0.01%3B%20lr%3D1%20loss%3Dsum%20batch_size%3D20")
    wait_for_app(page)
    helpers.press_train(page, page.get_by_text("Race over: 6 epochs."))
    expect(page.get_by_text("Race over: 6 epochs.")).to_be_visible(timeout=60_000)
    wait_for_app(page)
    expect(page.get_by_text("diverged", exact=False).first).to_be_visible()
    page.wait_for_timeout(800)
    page.screenshot(path=artifacts / "compare-diverged.png")
    assert page.locator("[data-testid='stException']").count() == 0


def test_a_deep_link_to_a_race_works_on_a_fresh_server(fresh_app_servers, chromium_browser,
                                                       wait_for_app, artifacts):
    [url] = fresh_app_servers(1)
    page = chromium_browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{url}/compare?preset=lrs&n_train=200&n_test=200&epochs=3&target_acc=0.8")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Compare")).to_be_visible()
    expect(page.locator("[data-testid='stImage'] img")).to_have_count(4)
    expect(page.locator("[data-testid='stSidebarNav']")).to_contain_text("Playground")
    page.get_by_role("button", name="Step").click()
    wait_for_epoch(page, 1, 60)
    page.context.close()


def test_at_phone_width_the_race_fits(app_server, chromium_browser, wait_for_app, artifacts):
    context = chromium_browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.goto(f"{app_server}/compare?n_train=200&n_test=200&epochs=50")
    wait_for_app(page)
    page.get_by_role("button", name="Step").click()
    wait_for_epoch(page, 1, 60)
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(2, timeout=30_000)
    page.wait_for_timeout(1200)
    page.screenshot(path=artifacts / "compare-420px.png", full_page=True)
    for name, part in (("ranking", "[data-testid='stDataFrame']"),
                       ("curves", "[data-testid='stVegaLiteChart']")):
        page.locator(part).first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / f"compare-420px-{name}.png")
    helpers.assert_fits(page, "[data-testid='stImage'] img", 420)
    context.close()
