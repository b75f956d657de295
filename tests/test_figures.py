"""Figures fit their column with every label readable: the Altair specs (``minidl.viz``) here,
and the pages drawn by Chromium at 1280 and 420 px wide (marked ``browser``).

The data are the README's results in ``docs/results``; screenshots go to ``test-artifacts/``.
"""

import json
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from minidl import hparams
from minidl.experiments import sweeps
from minidl.viz import ablation as ablation_figures
from minidl.viz import cv as cv_charts
from minidl.viz import study as study_charts

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "results"
CONVENTIONS = 11  # the ablation's rows: ten conventions and the best combination
WIDTHS = (1280, 420)  # viewport widths: a laptop, a phone


def ablation_summary() -> pd.DataFrame:
    return pd.read_csv(DOCS / "ablation" / "summary.csv")


def label_lines(expression: str, label: str) -> list[str]:
    """The lines a ``wrapped`` label expression writes for ``label``."""
    lines = json.loads(expression.split("[datum.label]")[0])
    return lines.get(label, [label])


# ---------------------------------------------------------------- the ablation's heatmap

@pytest.mark.parametrize("epochs", [200, 400, 2000])
def test_the_heatmap_names_every_convention_and_pair_in_full(epochs):
    spec = ablation_figures.figure(ablation_summary(), epochs).to_dict()
    rows = sorted({r["convention"] for r in spec["datasets"][spec["data"]["name"]]})
    pairs = {r["pair"] for r in spec["datasets"][spec["data"]["name"]]}
    assert len(rows) == CONVENTIONS and len(pairs) == (3 if epochs == 2000 else 9)
    x, y = (spec["layer"][0]["encoding"][c]["axis"] for c in "xy")
    for axis in (x, y):  # none hidden for overlapping, none cut short
        assert axis["labelOverlap"] is False and axis["labelLimit"] == 0
    assert x["labelAngle"] == -90  # upright: a column needs only a line's height
    for name in rows:  # a long name on two lines, each short, nothing lost
        lines = label_lines(y["labelExpr"], name)
        assert len(lines) <= 2 and " ".join(lines) == name
        assert all(len(line) <= ablation_figures.LINE for line in lines)


@pytest.mark.parametrize("epochs", [200, 400, 2000])
def test_the_heatmap_fits_the_width_it_is_given_and_its_rows_hold_two_lines(epochs):
    spec = ablation_figures.figure(ablation_summary(), epochs).to_dict()
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    rows = len({r["convention"] for r in spec["datasets"][spec["data"]["name"]]})
    assert spec["height"] == rows * ablation_figures.ROW_STEP  # a step made Vega-Lite warn
    assert ablation_figures.ROW_STEP >= 2 * 11 + 6  # two lines of 11 px labels, and a margin
    assert spec["layer"][0]["encoding"]["color"]["legend"]["orient"] == "bottom"
    assert all(len(line) <= 50 for line in spec["title"]["subtitle"])  # ~330 px of 11 px text


def luminance(colour: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour (0–255 each)."""
    def linear(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def lightness(colour: str) -> float:
    """CIELAB L* of a ``#rrggbb`` colour: what the scale's HCL interpolation is linear in."""
    y = luminance(tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)))
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


def test_numbers_on_the_heatmap_contrast_with_their_cells():
    spec = ablation_figures.figure(ablation_summary(), 400).to_dict()
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    colour = spec["layer"][1]["encoding"]["color"]
    assert colour["condition"]["test"] == f"datum.accuracy < {ablation_figures.DARK_BELOW}"
    text = {True: colour["condition"]["value"], False: colour["value"]}
    assert text == {True: "white", False: "black"}
    (low, mid, high), (c_low, c_mid, c_high) = scale["domain"], scale["range"]
    for accuracy in range(50, 101):
        a, b, lo, hi = (c_low, c_mid, low, mid) if accuracy <= mid else (c_mid, c_high, mid, high)
        L = lightness(a) + (lightness(b) - lightness(a)) * (accuracy - lo) / (hi - lo)
        cell = ((L + 16) / 116) ** 3  # the cell's luminance
        ink = 1.0 if text[accuracy < ablation_figures.DARK_BELOW] == "white" else 0.0
        contrast = (max(cell, ink) + 0.05) / (min(cell, ink) + 0.05)
        assert contrast >= 4.3, (accuracy, contrast)


# ---------------------------------------------------------------- Fig. 2 and the CV charts

@pytest.mark.parametrize("study", ["ours200", "ours400", "paper400"])
def test_fig2_names_all_nine_pairs_with_labels_that_need_little_room(study):
    spec = study_charts.accuracy_figure(pd.read_csv(DOCS / study / "summary.csv")).to_dict()
    x = spec["layer"][0]["encoding"]["x"]
    assert len(x["sort"]) == 9 and len(set(x["sort"])) == 9
    assert x["axis"]["labelOverlap"] is False and x["axis"]["labelLimit"] == 0
    # slanted at least 45°: labels 11 px high need bands of 11 / sin 45° ≈ 16 px, and
    # 9 bands fit a phone's column (~330 px after the y axis)
    assert 45 <= abs(x["axis"]["labelAngle"]) <= 90
    assert all(len(line) <= 50 for line in spec["title"]["subtitle"])


def sweep_table() -> pd.DataFrame:
    return sweeps.load(DOCS / "sweep200").table


def test_the_lr_chart_is_a_chart_per_optimizer_each_as_wide_as_its_column():
    charts = cv_charts.lr_charts(sweep_table())
    specs = [c.to_dict() for c in charts]
    assert [s["title"]["text"] for s in specs] == ["SGD", "Adam", "RMSProp"]
    for spec in specs:  # no facet of fixed width: each fits the column the page gives it
        assert "facet" not in spec and spec["autosize"] == {"type": "fit", "contains": "padding"}
        legend = spec["layer"][0]["encoding"]["color"]["legend"]
        assert legend["orient"] in ("top", "bottom")  # not beside the plot, narrowing it
    domains = {json.dumps(s["layer"][0]["encoding"]["y"]["scale"]["domain"]) for s in specs}
    assert len(domains) == 1  # one y scale: the panels compare at a glance


def test_the_fold_chart_fits_its_column_with_each_configuration_on_two_lines():
    spec = cv_charts.fold_chart(sweeps.load(DOCS / "sweep200").best_rows).to_dict()
    assert "width" not in spec and spec["autosize"] == {"type": "fit", "contains": "padding"}
    y = spec["layer"][0]["encoding"]["y"]["axis"]
    assert y["labelExpr"] == "split(datum.label, ' · ')" and y["labelLimit"] == 0
    assert spec["layer"][0]["encoding"]["color"]["legend"]["orient"] == "bottom"


# ---------------------------------------------------------------- in Chromium
# Streamlit draws Vega-Lite charts as SVG: their labels are text elements we can read and
# measure.  Vega keeps a label it hides for overlapping as a text element of opacity 0, and
# ends one cut at its limit with "…".

TEXTS = """chart => [...chart.querySelectorAll('svg.marks text')]
    .filter(t => t.getAttribute('opacity') !== '0' && getComputedStyle(t).opacity !== '0')
    .map(t => {
        const tspans = [...t.querySelectorAll('tspan')];
        const r = t.getBoundingClientRect();
        return {lines: tspans.length ? tspans.map(s => s.textContent) : [t.textContent],
                x: r.x, width: r.width, height: r.height};
    })"""


def texts(chart) -> list[dict]:
    """The text a chart shows: each element's lines and box (its hidden ones left out)."""
    return chart.evaluate(TEXTS)


def shows_in_full(chart, column: dict, labels: list[str]) -> None:
    """Every one of ``labels`` is drawn, on one or more lines, nothing cut short, and every
    text of the chart lies within ``column``."""
    drawn = texts(chart)
    slack = 4  # px: a text's box holds its line's leading too (the y title's, turned, sideways)
    for text in drawn:
        assert not any("…" in line for line in text["lines"]), text
        assert column["x"] - slack <= text["x"], (text, column)
        assert text["x"] + text["width"] <= column["x"] + column["width"] + slack, (text, column)
    shown = {" ".join(t["lines"]) for t in drawn}
    assert not [label for label in labels if label not in shown], shown


def fits(element, column: dict) -> None:
    """``element`` (a chart's container) and what is drawn in it lie within ``column``."""
    inner = element.locator("canvas, svg.marks").first
    for box in (element.bounding_box(), inner.bounding_box()):
        assert box["x"] >= column["x"] - 0.5, (box, column)
        assert box["x"] + box["width"] <= column["x"] + column["width"] + 0.5, (box, column)


def column_of(page) -> dict:
    """The main column's content box (its padding left out)."""
    block = page.locator("[data-testid='stMainBlockContainer']")
    box = block.bounding_box()
    left, right = block.evaluate("e => [getComputedStyle(e).paddingLeft,"
                                 " getComputedStyle(e).paddingRight].map(parseFloat)")
    return {"x": box["x"] + left, "width": box["width"] - left - right}


def open_at(page, url: str, width: int, wait_for_app) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(url)
    wait_for_app(page, timeout=120_000)


def pairs_of(summary: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(hparams.pair_label(p) for p in zip(summary["activation"],
                                                                 summary["optimizer"])))


@pytest.mark.browser
@pytest.mark.xdist_group("browser-playground")
def test_reproduce_figures_fit_their_column_and_name_every_row_and_column(
        app_server, browser_page, wait_for_app, artifacts):
    from playwright.sync_api import expect
    summary = ablation_summary()
    conventions = list(dict.fromkeys(summary["convention"]))
    page = browser_page
    for width in WIDTHS:
        open_at(page, f"{app_server}/reproduce", width, wait_for_app)
        charts = page.locator("[data-testid='stVegaLiteChart']")
        expect(charts).to_have_count(3, timeout=60_000)  # a README study's Fig. 2, 3; ablation
        column = column_of(page)
        fig2 = charts.first
        fig2.scroll_into_view_if_needed()
        fits(fig2, column)
        shows_in_full(fig2, column, pairs_of(pd.read_csv(DOCS / "ours200" / "summary.csv")))
        fig2.screenshot(path=artifacts / f"figures-fig2-{width}.png")
        heatmap = charts.last  # below the study's figures
        for budget in (200, 400, 2000):
            page.get_by_role("radio", name=str(budget), exact=True).click()
            expect(heatmap.locator("svg.marks text").filter(
                has_text=f"Table I under each convention, {budget} epochs")).to_have_count(
                1, timeout=60_000)
            wait_for_app(page)
            heatmap.scroll_into_view_if_needed()
            fits(heatmap, column)
            shows_in_full(heatmap, column, conventions + pairs_of(
                summary[summary["epochs"] == budget]))
            drawn = heatmap.locator("svg.marks").bounding_box()
            assert drawn["height"] >= CONVENTIONS * ablation_figures.ROW_STEP, drawn  # cells
            heatmap.screenshot(path=artifacts / f"figures-ablation-{budget}-{width}.png")
        assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.browser
@pytest.mark.xdist_group("browser-playground")
def test_the_cross_validation_charts_fit_their_column(
        fresh_app_servers, browser_page, wait_for_app, artifacts):
    (url,) = fresh_app_servers(1)
    # the server's results root (conftest: test-artifacts/results-PORT): the README's sweep
    root = artifacts / f"results-{urlparse(url).port}"
    shutil.copytree(DOCS / "sweep200", root / "sweeps" / "sweep200")
    from playwright.sync_api import expect
    best = sweeps.load(DOCS / "sweep200").best_rows
    configurations = [f"{hparams.pair_label((r['activation'], r['optimizer']))} "
                      f"{cv_charts.describe(r)}" for _, r in best.iterrows()]
    page = browser_page
    for width in WIDTHS:
        open_at(page, f"{url}/cross_validation", width, wait_for_app)
        charts = page.locator("[data-testid='stVegaLiteChart']")
        expect(charts.nth(1)).to_be_visible(timeout=60_000)
        column = column_of(page)
        for i in range(charts.count()):
            charts.nth(i).scroll_into_view_if_needed()
            fits(charts.nth(i), column)
        assert charts.count() == 4  # SGD, Adam, RMSProp; the folds
        for i, optimizer in enumerate(["SGD", "Adam", "RMSProp"]):
            charts.nth(i).scroll_into_view_if_needed()
            shows_in_full(charts.nth(i), column, [optimizer, "ReLU", "Tanh", "Sigmoid"])
        folds = charts.last
        folds.scroll_into_view_if_needed()
        fits(folds, column)
        shows_in_full(folds, column, configurations)
        page.get_by_text("Accuracy against learning rate").scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"figures-cv-{width}.png")
        folds.screenshot(path=artifacts / f"figures-cv-folds-{width}.png")
        assert page.locator("[data-testid='stException']").count() == 0


@pytest.mark.browser
@pytest.mark.xdist_group("browser-playground")
def test_the_about_pages_equations_fit_the_column(app_server, browser_page, wait_for_app,
                                                 artifacts):
    # KaTeX scrolls a display equation wider than its box, with no scroll bar in sight:
    # its box fits the column; what it holds must fit its box
    page = browser_page
    for width in WIDTHS:
        open_at(page, f"{app_server}/about", width, wait_for_app)
        column = column_of(page)
        equations = page.locator(".katex-display")
        assert equations.count() >= 6
        for i in range(equations.count()):
            equation = equations.nth(i)
            box = equation.bounding_box()
            assert column["x"] - 0.5 <= box["x"], (i, box, column)
            assert box["x"] + box["width"] <= column["x"] + column["width"] + 0.5, (i, box)
            inside, shown = equation.evaluate("e => [e.scrollWidth, e.clientWidth]")
            # (a glyph's italic overhang makes a fitting one 2 px wider than its box)
            assert inside <= shown + 4, (i, inside, shown)
        page.get_by_role("heading", name="Adam", exact=True).scroll_into_view_if_needed()
        page.screenshot(path=artifacts / f"figures-about-{width}.png")
