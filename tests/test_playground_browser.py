"""The Playground in a real headless Chromium: what a visitor sees and does (issue 10).

Fixtures live in ``conftest.py``; screenshots go to ``test-artifacts/``.
"""

import time
from urllib.parse import urlparse

import helpers
import pytest
from helpers import metric

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect
except ImportError:  # the browser fixtures skip (or fail under MINIDL_REQUIRE_BROWSER=1)
    expect, PlaywrightError = None, Exception

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-playground")]


def metric_value(page, label: str) -> str:
    return metric(page, label).first.inner_text()


def epoch(page) -> int:
    return int(metric_value(page, "Epoch").split("/")[0])


def test_the_first_screen_loads_nothing_from_other_hosts_and_invites_training(
        chromium_browser, app_server, wait_for_app, artifacts):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(urlparse(request.url).hostname))
    page.goto(app_server)
    wait_for_app(page)
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(2)  # diagram, boundary
    page.wait_for_timeout(1500)  # fonts, favicon, images
    page.screenshot(path=artifacts / "playground-first-screen.png")
    assert hosts - {"127.0.0.1", None} == set(), hosts
    # visitors get no Deploy button; the curves wait for an epoch instead of showing empty
    assert page.locator("[data-testid='stAppDeployButton']").count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    expect(page.get_by_text("appear here after the first epoch")).to_be_visible()
    expect(page.locator("[data-testid='stAlert']")).to_have_count(0)
    context.close()


def test_at_phone_width_the_boundary_is_whole(chromium_browser, app_server, wait_for_app,
                                               artifacts):
    context = chromium_browser.new_context(viewport={"width": 420, "height": 900})
    page = context.new_page()
    page.goto(app_server)
    wait_for_app(page)
    page.get_by_role("button", name="Step").click()   # the curves and health panel too
    expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(5, timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=artifacts / "playground-420px.png")
    for i, chart in enumerate(page.locator("[data-testid='stVegaLiteChart']").all()):
        chart.scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"playground-420px-chart{i}.png")
    helpers.assert_fits(page, "[data-testid='stVegaLiteChart'] canvas", 420)
    # the six metrics stay two rows of three, as on a wide screen (stacked, they were six)
    boxes = [m.bounding_box() for m in page.locator("[data-testid='stMetric']").all()]
    assert len(boxes) == 6 and len({round(b["y"]) for b in boxes}) == 2, boxes
    helpers.assert_fits(page, "[data-testid='stMetric']", 420)
    context.close()


BOUNDARY_SQUARE = 350  # px from the boundary chart's top: its square (300) and x axis


def first_screen(chromium_browser, url: str, wait_for_app, artifacts, width: int):
    """A new page ``width`` × 900 px on the Playground at ``url``, once its diagram and
    boundary are drawn (screenshot ``playground-{width}px-first-screen.png``); returns the
    page and its charts."""
    page = helpers.new_page(chromium_browser, width, 900)
    page.goto(url)
    wait_for_app(page)
    charts = page.locator("[data-testid='stVegaLiteChart']")
    expect(charts).to_have_count(2)
    page.wait_for_timeout(1000)
    page.screenshot(path=artifacts / f"playground-{width}px-first-screen.png")
    return page, charts


def test_on_a_phone_the_sidebar_starts_closed_and_the_boundary_is_in_the_first_screen(
        chromium_browser, app_server, wait_for_app, artifacts):
    page, charts = first_screen(chromium_browser, app_server, wait_for_app, artifacts, 420)
    sidebar = page.locator("[data-testid='stSidebar']").bounding_box()
    assert sidebar is None or sidebar["x"] + sidebar["width"] <= 0, sidebar   # closed
    bar = page.locator(".st-key-pg_bar").bounding_box()
    train = page.get_by_role("button", name="Train", exact=True).bounding_box()
    diagram, boundary = charts.nth(0).bounding_box(), charts.nth(1).bounding_box()
    # the buttons, the metrics and the whole boundary square with its x axis in the first
    # screen; the diagram under it, then the bar
    assert train["y"] + train["height"] < boundary["y"], (train, boundary)
    assert boundary["y"] + BOUNDARY_SQUARE <= 900, boundary
    assert boundary["y"] < diagram["y"] < bar["y"], (boundary, diagram, bar)
    helpers.assert_fits(page, ".st-key-pg_bar", 420)
    export = page.get_by_text("Export or import this network").bounding_box()
    assert export["y"] > bar["y"], (bar, export)  # what followed the live view still follows
    page.context.close()


def test_on_a_laptop_most_of_the_boundary_is_in_the_first_screen(
        chromium_browser, app_server, wait_for_app, artifacts):
    page, charts = first_screen(chromium_browser, app_server, wait_for_app, artifacts, 1280)
    # the bar above the diagram pushed the square's top to y ≈ 770 (130 of its 300 px in
    # view); a smaller top margin, smaller metric numbers and a one-line introduction: ≈ 640
    boundary = charts.nth(1).bounding_box()
    assert boundary["y"] + 0.75 * 300 <= 900, boundary
    page.context.close()


@pytest.mark.parametrize("width", [1280, 420])
def test_the_bars_number_inputs_show_their_buttons_and_the_features_all_show(
        chromium_browser, app_server, wait_for_app, artifacts, width):
    page = helpers.new_page(chromium_browser, width, 900)
    page.goto(f"{app_server}/?features=x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2")
    wait_for_app(page)
    bar = page.locator(".st-key-pg_bar")
    expect(bar.locator("[data-testid='stMultiSelect'] [data-tag]")).to_have_count(7)
    bar.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    bar.screenshot(path=artifacts / f"playground-bar-{width}px.png")
    inputs = bar.locator("[data-testid='stNumberInput']")
    expect(inputs).to_have_count(3)  # hidden layers, units 1, units 2
    for field in inputs.all():
        expect(field.get_by_role("button", name="Decrement")).to_be_visible()
        expect(field.get_by_role("button", name="Increment")).to_be_visible()
    tags = bar.locator("[data-testid='stMultiSelectTagsContainer']")
    sizes = tags.evaluate("e => [e.scrollWidth, e.clientWidth, e.scrollHeight, e.clientHeight]")
    assert sizes[0] <= sizes[1] and sizes[2] <= sizes[3], sizes  # no inner scrolling
    for tag in bar.locator("[data-tag]").all():   # each chosen feature wholly in its box
        inside, box = tag.bounding_box(), tags.bounding_box()
        assert box["x"] <= inside["x"] and inside["x"] + inside["width"] <= box["x"] + \
            box["width"] and inside["y"] + inside["height"] <= box["y"] + box["height"]
    rows = {round(tag.bounding_box()["y"]) for tag in bar.locator("[data-tag]").all()}
    assert len(rows) <= 2, rows   # all seven features in two rows, not four
    page.context.close()


def test_the_training_share_slider_moves_both_counts(app_server, browser_page,
                                                     wait_for_app, artifacts):
    page = browser_page
    page.goto(f"{app_server}/?n_train=300&n_test=300")
    wait_for_app(page)
    sidebar = page.locator("[data-testid='stSidebar']")
    slider = sidebar.get_by_role("slider", name="training share")
    expect(slider).to_have_value("0.5")
    slider.focus()
    page.keyboard.press("ArrowRight")  # one step: 0.55 of the 600 points
    page.wait_for_function("() => location.search.includes('n_train=330')")
    assert "n_test=270" in page.evaluate("location.search")
    expect(sidebar.get_by_role("spinbutton", name="training points")).to_have_value("330")
    expect(sidebar.get_by_role("spinbutton", name="test points")).to_have_value("270")
    expect(slider).to_have_value("0.55")
    wait_for_app(page)
    sidebar.screenshot(path=artifacts / "playground-training-share.png")
    assert page.locator("[data-testid='stException']").count() == 0


def test_five_steps_train_five_epochs(app_server, browser_page, wait_for_app):
    """Each Step click trains one epoch, and the page shows it.  Each waits for the last to
    show: Streamlit merges two clicks of one button that arrive while a rerun is pending into
    one (``_coalesce_widget_states`` keeps one trigger), so five clicks 0.12 s apart once
    trained four on a busy CI machine."""
    page = browser_page
    page.goto(f"{app_server}/?n_train=200&n_test=100")
    wait_for_app(page)
    step = page.get_by_role("button", name="Step")
    for done in range(1, 6):
        step.click()
        helpers.wait_until(lambda done=done: epoch(page) >= done, 30)
    wait_for_app(page)
    page.wait_for_timeout(1000)
    assert epoch(page) == 5


def test_closing_the_tab_frees_its_place_to_train(fresh_app_servers, chromium_browser,
                                                   wait_for_app, monkeypatch):
    """With one place to train, a second visitor waits while the first trains, and trains
    as soon as the first closes their tab."""
    monkeypatch.setenv("MINIDL_TRAINING_SESSIONS", "1")
    [url] = fresh_app_servers(1)
    first, second = (chromium_browser.new_context().new_page() for _ in range(2))
    for page in (first, second):
        page.goto(f"{url}/?epochs=10000")
        wait_for_app(page)
    helpers.press_train(first)
    expect(first.locator("[data-testid='stMetricValue']").first).not_to_have_text(
        "0 / 10000", timeout=30_000)
    second.get_by_role("button", name="Train", exact=True).click()
    expect(second.get_by_text("Waiting for a free place to train")).to_be_visible()
    assert epoch(second) == 0
    first.context.close()
    expect(second.get_by_text("Waiting for a free place to train")).to_have_count(
        0, timeout=30_000)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and epoch(second) == 0:
        time.sleep(0.2)
    assert epoch(second) > 0
    second.context.close()


def test_the_diagram_shows_the_network_and_a_click_opens_a_units_map(
        app_server, browser_page, wait_for_app, artifacts):
    from minidl.viz import network

    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1400})
    # a budget of 15 epochs: the run stops by itself (Pause is tested elsewhere)
    page.goto(f"{app_server}/?n_train=300&epochs=15&hidden=25,25,25")
    wait_for_app(page)
    helpers.train_to_the_budget(page, wait_for_app)
    assert epoch(page) == 15
    page.screenshot(path=artifacts / "playground-training-diagram.png")
    diagram = page.locator("[data-testid='stVegaLiteChart']").first
    box = diagram.locator("canvas, svg").first.bounding_box()
    layout = network.layout((7, 25, 25, 25, 2), 380)  # every candidate input is drawn
    x, y = layout.x[2], layout.centre_all(2)[4]      # hidden 2, unit 5
    caption = page.get_by_text("Hidden 2, unit 5: its activation over the square")
    # clicking a unit again keeps it; Vega may not listen yet after a run
    helpers.again_until(lambda _: page.mouse.click(box["x"] + x, box["y"] + y),
                        lambda ms: expect(caption).to_be_visible(timeout=ms))
    page.screenshot(path=artifacts / "playground-unit-click.png")
    page.wait_for_timeout(800)
    page.screenshot(path=artifacts / "playground-unit-map.png")
    assert page.locator("[data-testid='stException']").count() == 0


def small_diagram(page, app_server: str, wait_for_app):
    """Open the Playground on its default 2-6-6-2 network; once it is drawn, return where its
    diagram is on the page and its layout (every candidate input drawn: 7 in the first
    column)."""
    from minidl.viz import network

    page.goto(f"{app_server}/?n_train=200")
    wait_for_app(page)
    expect(metric(page, "Parameters")).to_have_text(["74"])      # 2-6-6-2
    diagram = page.locator("[data-testid='stVegaLiteChart']").first
    box = diagram.locator("canvas, svg").first.bounding_box()
    layout = network.layout((7, 6, 6, 2), 380)
    # Vega draws the diagram up to a second after the page's run has ended and only then
    # listens to the pointer: a click before that is lost (CI once lost one).  Wait until a
    # unit pointed at shows its map (pointing again until it does: pointing changes nothing),
    # and is gone again once the pointer leaves.
    caption = page.get_by_text("Hidden 1, unit 3: its activation over the square")
    off = box["x"] + box["width"] + 200, box["y"] - 100

    def point(attempt: int) -> None:
        if attempt:
            page.mouse.move(*off)
        page.mouse.move(box["x"] + layout.x[1], box["y"] + layout.centre_all(1)[2] + attempt % 2)
    helpers.again_until(point, lambda ms: expect(caption).to_be_visible(timeout=ms), tries=6,
                        timeout=5_000)
    page.mouse.move(*off)
    expect(caption).to_have_count(0)
    wait_for_app(page)
    return box, layout


def test_clicking_an_input_on_the_diagram_switches_it_on(app_server, browser_page,
                                                         wait_for_app, artifacts):
    page = browser_page
    box, layout = small_diagram(page, app_server, wait_for_app)
    page.mouse.click(box["x"] + layout.x[0], box["y"] + layout.centre_all(0)[2])  # x₁²
    page.wait_for_function("() => location.search.includes('features=x1%2Cx2%2Cx1sq')"
                           " || location.search.includes('features=x1,x2,x1sq')")
    expect(metric(page, "Parameters")).to_have_text(["80"])      # 3-6-6-2
    expect(page.locator(".st-key-pg_bar")).to_contain_text("x₁²")  # the bar's widget agrees
    wait_for_app(page)
    page.wait_for_timeout(800)
    page.screenshot(path=artifacts / "playground-input-switched-on.png")
    assert page.locator("[data-testid='stException']").count() == 0


def test_pointing_at_a_unit_shows_its_map_and_moving_off_the_boundary(
        app_server, browser_page, wait_for_app, artifacts):
    page = browser_page
    box, layout = small_diagram(page, app_server, wait_for_app)
    page.mouse.move(box["x"] + layout.x[1], box["y"] + layout.centre_all(1)[2])  # hidden 1, 3
    caption = page.get_by_text("Hidden 1, unit 3: its activation over the square")
    expect(caption).to_be_visible()
    wait_for_app(page)
    page.screenshot(path=artifacts / "playground-unit-hover.png")
    page.mouse.move(box["x"] + layout.x[1], box["y"] + layout.centre_all(1)[2] + 2)
    page.wait_for_timeout(1000)   # resting on the unit: no more runs of the page
    expect(page.locator("[data-testid='stApp']")).to_have_attribute(
        "data-test-script-state", "notRunning")
    page.mouse.move(box["x"] + box["width"] + 200, box["y"] - 100)        # off the diagram
    expect(caption).to_have_count(0)
    assert page.locator("[data-testid='stException']").count() == 0


def test_clicking_a_link_sets_its_weight(app_server, browser_page, wait_for_app, artifacts):
    page = browser_page
    box, layout = small_diagram(page, app_server, wait_for_app)
    # the middle of the top link between hidden 1 and hidden 2 (unit 1 → unit 1: level)
    x = (layout.x[1] + layout.x[2]) / 2
    page.mouse.click(box["x"] + x, box["y"] + layout.centre_all(1)[0])
    field = page.get_by_role("spinbutton", name="weight unit 1 → unit 1 (hidden 1 → hidden 2)")
    expect(field).to_be_visible()
    field.fill("1.5")
    field.press("Enter")
    expect(page.get_by_text("The weight is now 1.5;")).to_be_visible()
    wait_for_app(page)
    page.wait_for_timeout(800)
    page.screenshot(path=artifacts / "playground-link-weight.png")
    assert page.locator("[data-testid='stException']").count() == 0


def test_own_points_drawn_by_dragging_train_and_the_model_downloads(
        app_server, browser_page, wait_for_app, artifacts, tmp_path):
    import json

    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{app_server}/?n_train=100")
    wait_for_app(page)
    page.locator(".st-key-pg_bar").get_by_role("combobox", name="data set").click()
    page.get_by_role("option", name="your own points").click()
    wait_for_app(page)
    expect(page.get_by_text("Your points: 100")).to_be_visible()
    page.get_by_role("radiogroup", name="Add points of").get_by_text("class 1").click()
    wait_for_app(page)
    editor = page.locator("[data-testid='stExpander'] [data-testid='stVegaLiteChart']").first
    box = editor.bounding_box()
    # drag over part of the square's top left (the plot starts after the y axis), at a
    # person's pace: Vega starts a rectangle only on moves it sees one by one
    left, top = box["x"] + 90, box["y"] + 40

    def drag(_) -> None:
        page.mouse.move(left, top)
        page.wait_for_timeout(300)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(left + 10 * i, top + 10 * i)
            page.wait_for_timeout(50)
        page.mouse.up()
    # Vega listens only once it has drawn, seconds after the run: drag again if nothing came
    drags = helpers.again_until(drag, lambda ms: expect(
        page.get_by_text("Your points: 100", exact=False)).to_have_count(0, timeout=ms))
    wait_for_app(page)
    label = page.get_by_text("Your points:").inner_text()
    added = int(label.split("Your points: ")[1].split(" ")[0]) - 100
    assert 1 <= added <= 60 * drags, label  # a late first drag may count too
    page.screenshot(path=artifacts / "playground-own-points.png")
    page.get_by_role("button", name="Step").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and epoch(page) < 1:
        time.sleep(0.2)
    assert epoch(page) == 1
    page.get_by_text("Export or import this network").click()
    # the page's last run after training stopped (it enables the GIF): a click before it
    # could ask for a file that run has just replaced, and no download would come
    expect(page.get_by_role("button", name="Replay as GIF")).to_be_enabled()
    saved = tmp_path / "model.json"
    helpers.download(page, "Model as JSON").save_as(saved)
    doc = json.loads(saved.read_text())
    assert doc["settings"]["dataset"] == "custom" and doc["epoch"] == 1
    assert len(doc["points"]["label"]) == 100 + added
    page.screenshot(path=artifacts / "playground-export.png")


def test_the_spiral_is_learnt_with_input_features(app_server, browser_page, wait_for_app,
                                                   artifacts):
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{app_server}/?dataset=spiral&features=x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2"
              "&optimizer=adam&batch_size=10&epochs=40&show_test=true")
    wait_for_app(page)
    helpers.train_to_the_budget(page, wait_for_app)
    page.screenshot(path=artifacts / "playground-spiral-features.png")
    # once on CI the box was empty by now, and a new network on x₁, x₂ at epoch 0; no cause
    # found (stop 30's note): fail there, not at the accuracy
    expect(page.locator(".st-key-pg_bar [data-tag]")).to_have_count(7, timeout=1_000)
    accuracy = float(metric_value(page, "Test accuracy").rstrip("%"))
    assert accuracy >= 90.0, accuracy


def test_the_health_panel_shows_the_sigmoid_plateau(app_server, browser_page, wait_for_app,
                                                    artifacts):
    """The report's Sigmoid settings sit on the 0.25 loss plateau; the screenshot is the
    README's evidence of why (gradients fading layer by layer)."""
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{app_server}/?activation=sigmoid&epochs=15")
    wait_for_app(page)
    helpers.train_to_the_budget(page, wait_for_app)
    page.screenshot(path=artifacts / "playground-sigmoid-health.png")
    assert float(metric_value(page, "Train loss")) > 0.24
    expect(page.get_by_text("Layer health", exact=True)).to_be_visible()
    expect(page.get_by_text("the layer health panel shows where the gradient fades")).to_be_visible()


def test_the_boundary_stays_put_through_a_200_epoch_run(app_server, browser_page,
                                                        wait_for_app, artifacts):
    # the epoch's value grows from "0 / 200" to "200 / 200" and a notice or the budget's
    # message comes and goes: none of it may move the boundary (it moved down a row of
    # metrics at epoch 100, out of sight)
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{app_server}/?n_train=100&n_test=100&epochs=200")
    wait_for_app(page)
    boundary = page.locator("[data-testid='stVegaLiteChart']").nth(1)
    expect(boundary).to_be_visible()
    helpers.press_train(page)
    # where it is once training runs (in 1 of 4 full runs it was 72 px higher at the page's
    # load than at the click, not seen in 6 loads probed since: issue 22's note)
    top = boundary.bounding_box()["y"]
    seen = set()
    while "200" not in seen:  # sampled for as long as it trains, however fast that is
        epoch_now = metric_value(page, "Epoch").split("/")[0].strip()
        seen.add(epoch_now)
        assert boundary.bounding_box()["y"] == top, f"the boundary moved at epoch {epoch_now}"
        page.wait_for_timeout(100)
    expect(page.get_by_text("Epoch budget reached")).to_be_visible(timeout=30_000)
    wait_for_app(page)
    page.screenshot(path=artifacts / "playground-200-epochs.png")
    assert boundary.bounding_box()["y"] == top
    assert any(len(e) == 3 for e in seen - {"200"}) or len(seen) > 1


def test_replay_scrubs_back_through_the_epochs_and_the_gif_downloads(
        app_server, browser_page, wait_for_app, artifacts, tmp_path):
    import io

    from PIL import Image

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.goto(f"{app_server}/?n_train=200&n_test=100&optimizer=adam&lr=0.03&batch_size=10"
              "&epochs=12")
    wait_for_app(page)
    boundary = page.locator("[data-testid='stVegaLiteChart']").nth(1)
    title = page.get_by_role("heading", name="Playground")

    def top() -> float:  # below the title, wherever the page is scrolled
        return boundary.bounding_box()["y"] - title.bounding_box()["y"]
    expect(page.get_by_text("Replay", exact=True)).to_have_count(0)  # nothing to replay yet
    helpers.train_to_the_budget(page, wait_for_app)
    assert metric_value(page, "Epoch") == "12 / 12"
    first = top()
    page.get_by_text("Replay", exact=True).click()
    wait_for_app(page)
    thumb = page.get_by_role("slider", name="Epoch shown")
    expect(thumb).to_be_visible()
    thumb.focus()
    thumb.press("Home")     # to the first epoch kept …
    wait_for_app(page)
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text("1 / 12")
    for _ in range(2):      # … and two on
        thumb.press("ArrowRight")
        page.wait_for_timeout(300)
    wait_for_app(page)
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text("3 / 12")
    title.scroll_into_view_if_needed()  # focusing the slider scrolled the page
    page.wait_for_timeout(1000)
    page.screenshot(path=artifacts / "playground-replay.png")
    assert top() == first  # scrubbing never moves the boundary
    expect(page.get_by_text("Epoch budget reached")).to_have_count(0)  # that was epoch 12
    assert page.locator("[data-testid='stException']").count() == 0

    page.get_by_text("Export or import this network").click()
    saved = tmp_path / "replay.gif"
    helpers.download(page, "Replay as GIF").save_as(saved)
    gif = Image.open(io.BytesIO(saved.read_bytes()))
    assert gif.n_frames == 12 and gif.size == (240, 240)
    gif.seek(2)
    gif.convert("RGB").save(artifacts / "playground-replay-gif-epoch-3.png")

    page.get_by_text("Replay", exact=True).click()  # off: the run as it is
    wait_for_app(page)
    expect(page.locator("[data-testid='stMetricValue']").first).to_have_text("12 / 12")
    expect(page.get_by_text("Epoch budget reached")).to_be_visible()
    assert top() == first


# the share of near-white pixels in the middle of the boundary's canvas (the second chart,
# beside the diagram): a frame drawn without its picture shows the white plot background
# between the points; -1 when there is no canvas at that moment
WHITE_SHARE = """() => {
  const canvas = document.querySelectorAll("[data-testid='stVegaLiteChart'] canvas")[1];
  if (!canvas) return -1;
  const w = canvas.width, h = canvas.height;
  const d = canvas.getContext('2d').getImageData(Math.floor(0.3 * w), Math.floor(0.3 * h),
                                                  Math.floor(0.4 * w), Math.floor(0.4 * h)).data;
  let white = 0, n = 0;
  for (let i = 0; i < d.length; i += 4 * 7) {
    n++;
    if (d[i] > 250 && d[i + 1] > 250 && d[i + 2] > 250) white++;
  }
  return white / n;
}"""


def test_no_frame_of_the_boundary_is_blank_while_it_trains(app_server, browser_page,
                                                            wait_for_app):
    # Vega draws a new picture only once the browser has decoded it: without the coarse
    # underlay beneath it, 7 frames in 30 showed the points on white
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{app_server}/?epochs=100000")
    wait_for_app(page)
    helpers.press_train(page)
    first = epoch(page)
    deadline = time.monotonic() + 120
    while epoch(page) < first + 2:  # redraws have begun, however slow the machine
        assert time.monotonic() < deadline, "training did not start"
        page.wait_for_timeout(100)
    shares = []
    for _ in range(100):
        shares.append(page.evaluate(WHITE_SHARE))
        page.wait_for_timeout(47)
    trained = epoch(page)
    page.get_by_role("button", name="Pause").click()
    assert trained > first + 2  # it redrew while sampled
    blank = [s for s in shares if s < 0 or s > 0.5]
    assert not blank, f"{len(blank)} of {len(shares)} frames blank: {blank[:5]}"

def test_streamlits_own_stop_pauses_training_for_good(app_server, browser_page, wait_for_app):
    """Streamlit offers its Stop (top right) while the live view's script runs; it stopped
    one redraw, and training went on.  Now it pauses, as Pause does."""
    page = browser_page
    page.goto(f"{app_server}/?n_train=200&n_test=100&epochs=10000")
    wait_for_app(page)
    helpers.press_train(page)
    helpers.wait_until(lambda: epoch(page) >= 2, timeout=60)  # the live view's runs drew
    # Stop stops the run under way; one that ends as the click arrives leaves nothing to
    # stop (Streamlit's Stop, not ours): press it again, as a person would
    stop = page.locator("[data-testid='stStatusWidget']").get_by_role("button", name="Stop")
    train = page.get_by_role("button", name="Train", exact=True)
    for _ in range(5):
        try:
            stop.click(timeout=5_000)
        except PlaywrightError:  # no run under way to stop (it may have been stopped)
            pass
        try:
            expect(train).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            continue
    expect(train).to_be_visible()
    wait_for_app(page)
    paused_at = epoch(page)
    assert paused_at > 0
    page.wait_for_timeout(3000)
    page.get_by_text("show test points").click()  # a rerun of the page draws where it is
    wait_for_app(page)
    page.wait_for_timeout(500)
    assert epoch(page) == paused_at
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_visible()
