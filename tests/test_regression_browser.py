"""A regression in the Playground, in a real headless Chromium: the output map renders (the
points' value scale included, which Vega-Lite checks only in the browser) and trains."""

import helpers
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixtures skip (or fail under MINIDL_REQUIRE_BROWSER=1)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-playground")]


def metric_value(page, label: str) -> str:
    return helpers.metric(page, label).first.inner_text()


def test_a_multi_gaussian_regression_trains_and_its_output_map_renders(
        app_server, browser_page, wait_for_app, artifacts):
    page = browser_page
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{app_server}/?problem=regression&dataset=multigauss&inputs=standardised"
              "&hidden=25,25&optimizer=adam&lr=0.005&batch_size=10&epochs=30&n_train=500"
              "&n_test=500&show_test=true")
    wait_for_app(page)
    expect(page.get_by_text("Mean guess's test loss", exact=True)).to_be_visible()
    guess = float(metric_value(page, "Mean guess's test loss"))
    helpers.train_to_the_budget(page, wait_for_app)
    page.screenshot(path=artifacts / "playground-regression-multigauss.png")
    assert metric_value(page, "Epoch") == "30 / 30"
    assert float(metric_value(page, "Test loss")) < 0.3 * guess
    assert page.get_by_text("Test accuracy", exact=True).count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    assert not [e for e in errors if "Vega" in e or "vega" in e or "Error" in e], errors
