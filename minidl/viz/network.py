"""The network diagram: inputs → hidden units → outputs, live.

Diagram: one column per layer, one small square per unit showing the unit's
activation over the input square ``[0, 1]²`` as a tiny PNG, links between
consecutive columns coloured by the weight's sign (orange positive, blue
negative — the boundary's colours) and as thick as ``|w|`` on one scale for every
network and epoch (``link_width``: ``√|w|``, thickest from ``|w| = 1``; a legend
row under the columns), so weights that L1 shrinks towards 0 draw visibly thinner
(at most ``max_links`` strongest links into each unit, so 64-unit layers stay
legible).

All units' maps come from *one* forward pass of a coarse grid (``resolution²``
points) through the model, collecting every layer's output
(``minidl.health.layer_outputs``).  Colours (``boundary.colorize`` on a value in
``[−1, 1]``): inputs are scaled by their largest ``|value|``; tanh units show
``y``; sigmoid units ``2y − 1``; ReLU / linear units ``y / max |y|`` over the
layer; output ``k`` shows how strongly it votes for class ``k`` — orange for
class 1, blue for class 0, like the boundary.

Live redraws follow ``minidl.viz.live``: the Vega-Lite spec depends only on
the layer sizes and the width (``spec(sizes, width)``, cached) and every frame
swaps in the tables from ``network_data`` (``live.with_data``).  Clicking a unit
selects it (point selection ``SELECT`` on the field ``unit``), and so does the pointer
over it (``HOVER``, cleared as it leaves); ``selected_unit(event, name)`` reads
Streamlit's selection and ``unit_image`` draws that unit's map large.  With a run's
options (``run_options``) the input column shows every candidate feature, those the
network does not read dimmed (``clicked_feature``: which one a click switches).

Why this module is long: the layout (pixels per unit and column), the per-frame
tables (unit maps, links, tooltips) and the selection a click makes are one
drawing, and they must agree on every coordinate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd
import torch

from .. import data, health, hparams, nn
from . import boundary

UNITS, LINKS = "network_units", "network_links"
SELECT = "unit_pick"   # the point selection's name: Streamlit reports it under this key
HOVER = "unit_hover"   # … of the unit under the pointer (cleared when it leaves the unit)
LINK = "link_pick"     # … of a clicked link, on the field ``link``: "layer:row:column"
LINK_TARGET = 9        # pixels: a link is this wide to a click, however thin it is drawn
POSITIVE, NEGATIVE = boundary.CLASS_COLORS[1], boundary.CLASS_COLORS[0]
INPUT_NAMES = ("x₁", "x₂")
INACTIVE_OPACITY = 0.3            # an input the network does not read

MAX_UNIT, MIN_UNIT = 30, 5        # a unit's square, in pixels
LABEL_MARGIN = 30                 # room left of the inputs for their names
HEADER = 18                       # room above the columns for their titles
FOOTER = 16                       # room below them for the links' legend
FULL_WEIGHT = 1.0                 # |w| from which a link is drawn its thickest
RESOLUTION = 24                   # unit maps: the network's values on RESOLUTION² points
LEGEND_WEIGHTS = (0.01, 0.1, 1.0)
TOOLTIP_FORMAT = ".4~g"           # at most 4 significant digits


@dataclass(frozen=True)
class Layout:
    """Where each unit goes: column ``c`` is at ``x[c]``; its units are ``unit`` pixels
    square, ``pitch`` apart, centred vertically in a plot of ``width × height``."""

    sizes: tuple[int, ...]
    width: int
    height: int
    unit: int
    pitch: float
    x: tuple[float, ...]

    def centre_all(self, column: int) -> np.ndarray:
        """The y of every unit of ``column``, top to bottom."""
        top = HEADER + (self.height - FOOTER - HEADER - self.sizes[column] * self.pitch) / 2
        return top + (np.arange(self.sizes[column]) + 0.5) * self.pitch


def layout(sizes: Sequence[int], width: int = 420, max_height: int | None = None) -> Layout:
    """Place ``sizes`` (inputs, hidden widths…, outputs) in ``width`` pixels; the height
    grows with the tallest layer up to ``max_height`` (default ``width`` within 360–560),
    beyond which units shrink (to ``MIN_UNIT`` at the least)."""
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer sizes must be ≥ 1, at least inputs and outputs; got {sizes}")
    if not isinstance(width, int) or width < 120:
        raise ValueError(f"Invalid diagram width (width): {width!r} (expected ≥ 120 pixels)")
    max_height = min(max(360, width), 560) if max_height is None else max_height
    tallest = max(sizes)
    step = (width - LABEL_MARGIN - MAX_UNIT / 2 - 4) / (len(sizes) - 1)
    unit = min(MAX_UNIT, 0.55 * step, (max_height - HEADER - 4) / (1.25 * tallest))
    unit = max(MIN_UNIT, int(unit))
    pitch = 1.25 * unit
    height = int(math.ceil(HEADER + tallest * pitch + 4 + FOOTER))
    first = LABEL_MARGIN + unit / 2
    step = (width - unit / 2 - 2 - first) / (len(sizes) - 1)
    return Layout(sizes, width, height, unit, pitch, tuple(first + c * step
                                                          for c in range(len(sizes))))


def _column_titles(count: int) -> list[str]:
    return ["input"] + [f"hidden {i}" for i in range(1, count - 1)] + ["output"]


def _activation_name(module: nn.Module | None) -> str:
    return "linear" if module is None else type(module).__name__


def _shown(values: torch.Tensor, kind: str, column: int, columns: int,
           output_range: tuple[float, float]) -> torch.Tensor:
    """``(points, units)`` activations → values in ``[−1, 1]`` for ``boundary.colorize``."""
    if column == columns - 1:  # output k: how strongly it votes for class k
        low, high = output_range
        centred = (values - (low + high) / 2) / ((high - low) / 2)
        return centred * torch.tensor([-1.0, 1.0] if values.shape[1] == 2 else [1.0])
    if kind == "Tanh":
        return values
    if kind == "Sigmoid":
        return 2 * values - 1
    if column == 0:  # each input by its own largest |value|
        return values / values.abs().amax(dim=0).clamp(min=1e-12)
    return values / values.abs().amax().clamp(min=1e-12)


def unit_values(model: nn.Sequential, encode: Callable[[torch.Tensor], torch.Tensor] | None,
                resolution: int, active: Sequence[bool] | None = None,
                layers: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Every column's values on the ``resolution²`` grid, inputs first: ``(points, units)``
    each, from one forward pass (``encode`` maps grid points to the diagram's inputs, of which
    the ``active`` ones feed the network; None: all).  ``layers``: every layer's values, where
    they were computed already (the training service does, for a class's runs at once)."""
    points = boundary.grid(resolution)
    inputs = points if encode is None else encode(points)
    if layers is None or [v.shape for v in layers] != [(len(points), linear.out_features)
                                                       for linear, _ in health.layers(model)]:
        fed = inputs if active is None else inputs[:, torch.tensor(list(active),
                                                                   dtype=torch.bool)]
        layers = health.layer_outputs(model, fed)
    return [inputs, *layers]


def default_links(sizes: Sequence[int]) -> int:
    """Links drawn into each unit: 8, or fewer when the tallest layer has over 16 units
    (2 for 64-unit layers), so that a diagram of wide layers stays readable."""
    return max(2, min(8, 128 // max(sizes)))


def network_data(model: nn.Sequential, width: int = 420,
                 encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 input_names: Sequence[str] = INPUT_NAMES, resolution: int = RESOLUTION,
                 max_links: int | None = None, output_range: tuple[float, float] = (0.0, 1.0),
                 max_height: int | None = None, active: Sequence[bool] | None = None,
                 layers: Sequence[torch.Tensor] | None = None) -> dict[str, pd.DataFrame]:
    """The tables ``spec(sizes, width)`` reads: ``UNITS`` (one row per unit: position,
    PNG data URL, tooltip fields) and ``LINKS`` (one row per drawn weight).

    ``encode`` turns points of the square into the diagram's inputs (the run's input
    encoding and features; default: the points themselves), named ``input_names``; with
    ``active``, every candidate input is drawn and only the ``active`` ones feed the network
    (the others dimmed, without links, to be switched on: ``sizes[0]`` counts them all).
    ``output_range`` is the (low, high) training target (one-hot: (0, 1); ±1: (−1, 1)).
    Each unit keeps its ``max_links`` strongest incoming links (default: 8, fewer in
    tall layers — ``default_links``).  ``layers``: as for ``unit_values``.
    """
    found = health.layers(model)
    sizes = model_sizes(model)
    active = [True] * sizes[0] if active is None else [bool(a) for a in active]
    if sum(active) != sizes[0]:
        raise ValueError(f"{sum(active)} active inputs for {sizes[0]} inputs")
    sizes = (len(active), *sizes[1:])
    if len(input_names) != sizes[0]:
        raise ValueError(f"{len(input_names)} input names for {sizes[0]} inputs")
    plan = layout(sizes, width, max_height)
    columns = unit_values(model, encode, resolution, active, layers)
    # pictures no finer than the square has pixels (smaller PNGs for small units), by taking
    # the nearest grid cells; the tooltip's statistics use the whole grid
    pixels = max(4, min(resolution, plan.unit))
    cells = ((torch.arange(pixels) + 0.5) * resolution / pixels).long()
    picked = (cells.unsqueeze(1) * resolution + cells).reshape(-1)
    kinds = ["input"] + [_activation_name(act) for _, act in found]
    titles = _column_titles(len(sizes))
    # every unit's picture in one colouring pass: (units, pixels, pixels, 3)
    shown = torch.cat([_shown(v, kinds[c], c, len(columns), output_range)
                       for c, v in enumerate(columns)], dim=1)[picked]
    pictures = boundary.colorize(shown.t().reshape(-1, pixels, pixels))
    urls = boundary.png_urls(pictures)
    # each picture's mean colour, drawn beneath it: what shows while the browser decodes it
    fills = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in
             pictures.float().mean((1, 2)).round().to(torch.uint8).tolist()]
    values = torch.cat(columns, dim=1)

    column = np.repeat(np.arange(len(sizes)), sizes)
    index = np.concatenate([np.arange(n) for n in sizes])
    names = [*input_names, *(f"unit {j + 1}" for n in sizes[1:-1] for j in range(n)),
             *(f"out {j} (class {j})" if sizes[-1] > 1 else "out (value)"
               for j in range(sizes[-1]))]
    centre_x = np.asarray(plan.x)[column]
    centre_y = np.concatenate([plan.centre_all(c) for c in range(len(sizes))])
    half = plan.unit / 2
    bias = [None] * sizes[0] + [b for linear, _ in found for b in linear.bias.tolist()]
    units = pd.DataFrame({
        "unit": [f"{c}:{j}" for c, j in zip(column.tolist(), index.tolist())],
        "column": column, "layer": np.asarray(titles)[column], "name": names,
        "activation": np.asarray(kinds)[column],
        "x0": centre_x - half, "x1": centre_x + half,
        "y0": centre_y - half, "y1": centre_y + half,
        "mean": values.mean(0).numpy(), "min": values.amin(0).numpy(),
        "max": values.amax(0).numpy(), "bias": bias, "url": urls, "fill": fills,
        # an input the network does not read: dimmed, there to be switched on
        "active": active + [True] * (len(column) - sizes[0])})
    units["opacity"] = np.where(units["active"], 1.0, INACTIVE_OPACITY)

    first = np.cumsum((0, *sizes))  # row of each column's first unit in ``units``
    fed = np.flatnonzero(active)    # the inputs' rows, by the network's input index
    sources, targets, weights, between, keys = [], [], [], [], []
    for c, (linear, _) in enumerate(found):  # column c → column c + 1, w : (out, in)
        w = linear.weight
        k = min(max_links or default_links(sizes), w.shape[1])
        source = torch.nan_to_num(w.abs(), nan=0.0).topk(k, dim=1).indices
        weights.append(w.gather(1, source).reshape(-1).numpy())
        source = source.reshape(-1).numpy()
        row = np.repeat(np.arange(w.shape[0]), k)
        keys += [f"{c}:{r}:{j}" for r, j in zip(row.tolist(), source.tolist())]
        sources.append(first[c] + (fed[source] if c == 0 else source))
        targets.append(first[c + 1] + np.repeat(np.arange(w.shape[0]), k))
        between += [f"{titles[c]} → {titles[c + 1]}"] * (k * w.shape[0])
    source, target, weight = (np.concatenate(t) for t in (sources, targets, weights))
    name_of = np.asarray(names)
    links = pd.DataFrame({
        "x": centre_x[source] + half, "x2": centre_x[target] - half,
        "y": centre_y[source], "y2": centre_y[target], "weight": weight,
        "sign": np.where(weight >= 0, "positive", "negative"),
        "stroke": link_width(weight, plan),
        "source": name_of[source], "target": name_of[target], "between": between,
        # which weight: W[row, column] of Linear layer ``layer`` (``selected_link``)
        "link": keys})
    return {UNITS: units, LINKS: links}


def link_width(weight: np.ndarray, plan: Layout) -> np.ndarray:
    """A link's stroke in pixels, on one scale for every network and epoch: the thickest
    (up to 4 px, less for small units) times ``√(|w| / FULL_WEIGHT)``, capped at 1 — so a
    weight of 0.01 draws a tenth of the thickest, and 0 draws nothing."""
    thickest = min(4.0, max(1.0, 0.35 * plan.unit))
    strength = np.nan_to_num(np.abs(np.asarray(weight, dtype=np.float64)), nan=0.0)
    return thickest * np.sqrt(np.minimum(strength / FULL_WEIGHT, 1.0))


def _legend(plan: Layout) -> list[alt.Chart]:
    """The links' scale under the columns: a short link per weight of ``LEGEND_WEIGHTS``."""
    y = plan.height - FOOTER / 2
    x = LABEL_MARGIN + 44.0 + 50.0 * np.arange(len(LEGEND_WEIGHTS))
    rules = pd.DataFrame({"x": x, "x2": x + 16, "y": y, "color": "#777777",
                          "stroke": link_width(np.asarray(LEGEND_WEIGHTS), plan)})
    words = [f"{w:g}" for w in LEGEND_WEIGHTS]
    if plan.width >= 380:  # and the colours, where there is room
        signs = x[-1] + 60 + 75 * np.arange(2)
        rules = pd.concat([rules, pd.DataFrame({
            "x": signs, "x2": signs + 16, "y": y, "color": [POSITIVE, NEGATIVE],
            "stroke": link_width(np.ones(2) * 0.25, plan)})], ignore_index=True)
        x, words = np.concatenate([x, signs]), [*words, "positive", "negative"]
    words = pd.DataFrame({"x": x + 20, "y": y, "text": words})
    px = {"scale": None, "axis": None}
    lines = alt.Chart(rules).mark_rule(tooltip=None).encode(
        x=alt.X("x:Q", **px), x2="x2:Q", y=alt.Y("y:Q", **px),
        stroke=alt.Stroke("color:N", scale=None),  # not the links' colour legend
        strokeWidth=alt.StrokeWidth("stroke:Q", scale=None))
    text = alt.Chart(words).mark_text(fontSize=10, color="#555555", align="left",
                                      baseline="middle", tooltip=None).encode(
        x=alt.X("x:Q", **px), y=alt.Y("y:Q", **px), text="text:N")
    title = alt.Chart(pd.DataFrame({"x": [x[0] - 4], "y": [y]})).mark_text(
        text="|weight|", fontSize=10, color="#555555", align="right", baseline="middle",
        tooltip=None).encode(x=alt.X("x:Q", **px), y=alt.Y("y:Q", **px))
    return [lines, text, title]


def network_chart(sizes: Sequence[int], width: int = 420, max_height: int | None = None
                  ) -> alt.LayerChart:
    """Links, unit maps, a click target per unit and column titles, in pixel coordinates
    (``layout``); reads ``UNITS`` and ``LINKS`` (``network_data``)."""
    plan = layout(sizes, width, max_height)
    px = {"scale": None, "axis": None}

    def xy(x: str, x2: str, y: str, y2: str) -> dict:
        return dict(x=alt.X(f"{x}:Q", **px), x2=f"{x2}:Q", y=alt.Y(f"{y}:Q", **px), y2=f"{y2}:Q")

    dense = max(plan.sizes) > 16
    links = alt.Chart(alt.NamedData(name=LINKS)).mark_rule(opacity=0.4 if dense else 0.55
                                                           ).encode(
        **xy("x", "x2", "y", "y2"),
        color=alt.Color("sign:N", scale=alt.Scale(domain=["positive", "negative"],
                                                  range=[POSITIVE, NEGATIVE]), legend=None),
        strokeWidth=alt.StrokeWidth("stroke:Q", scale=None),
        tooltip=[alt.Tooltip("between:N", title="layers"), alt.Tooltip("source:N", title="from"),
                 alt.Tooltip("target:N", title="to"),
                 alt.Tooltip("weight:Q", title="weight", format=TOOLTIP_FORMAT)])
    # a wide, nearly transparent copy of each link over it (under the units): a click target
    link_picked = alt.selection_point(name=LINK, fields=["link"], on="click", empty=False,
                                      clear="dblclick")
    link_targets = alt.Chart(alt.NamedData(name=LINKS)).mark_rule(
        strokeWidth=LINK_TARGET, cursor="pointer").encode(
        **xy("x", "x2", "y", "y2"),
        color=alt.condition(link_picked, alt.value("#111111"), alt.value("#ffffff")),
        strokeOpacity=alt.condition(link_picked, alt.value(0.25), alt.value(0.01)),
        tooltip=[alt.Tooltip("between:N", title="layers"), alt.Tooltip("source:N", title="from"),
                 alt.Tooltip("target:N", title="to"),
                 alt.Tooltip("weight:Q", title="weight",
                             format=TOOLTIP_FORMAT)]).add_params(link_picked)
    # under each map its mean colour, which shows while a new map is decoded (Vega draws an
    # image only once loaded: without it, the units blinked blank at every redraw)
    dimmed = alt.Opacity("opacity:Q", scale=None)  # an input the network does not read
    under = alt.Chart(alt.NamedData(name=UNITS)).mark_rect(tooltip=None).encode(
        **xy("x0", "x1", "y0", "y1"), fill=alt.Fill("fill:N", scale=None), opacity=dimmed)
    # the maps themselves never show a tooltip (it would be the data URL)
    maps = alt.Chart(alt.NamedData(name=UNITS)).mark_image(
        aspect=False, smooth=False, tooltip=None).encode(**xy("x0", "x1", "y0", "y1"),
                                                          url="url:N", opacity=dimmed)
    picked = alt.selection_point(name=SELECT, fields=["unit"], on="click", empty=False,
                                 clear="dblclick")
    # pointerover, not mouseover: a tap on a touch screen selects both, and its pointerout
    # clears the hover at once, leaving the tapped unit picked
    hovered = alt.selection_point(name=HOVER, fields=["unit"], on="pointerover",
                                  clear="pointerout", empty=False)
    marked = picked | hovered
    targets = alt.Chart(alt.NamedData(name=UNITS)).mark_rect(
        fill="white", fillOpacity=0.01, cursor="pointer").encode(
        **xy("x0", "x1", "y0", "y1"),
        stroke=alt.condition(marked, alt.value("#111111"), alt.value("#9a9a9a")),
        # a frame around small units would hide their picture
        strokeWidth=alt.condition(marked, alt.value(2.0),
                                  alt.value(0.6 if plan.unit >= 10 else 0.0)),
        tooltip=[alt.Tooltip("layer:N"), alt.Tooltip("name:N", title="unit"),
                 alt.Tooltip("activation:N"),
                 alt.Tooltip("mean:Q", title="mean activation", format=TOOLTIP_FORMAT),
                 alt.Tooltip("min:Q", title="min", format=TOOLTIP_FORMAT),
                 alt.Tooltip("max:Q", title="max", format=TOOLTIP_FORMAT),
                 alt.Tooltip("bias:Q", format=TOOLTIP_FORMAT)]).add_params(picked, hovered)
    input_labels = alt.Chart(alt.NamedData(name=UNITS)).transform_filter(
        "datum.column == 0").mark_text(align="right", baseline="middle", dx=-4, fontSize=11,
                                       tooltip=None).encode(
        x=alt.X("x0:Q", **px), y=alt.Y("y_mid:Q", **px), text="name:N",
        opacity=dimmed).transform_calculate(
        y_mid="(datum.y0 + datum.y1) / 2")
    names = _column_titles(len(plan.sizes))
    # ~6 px per character at font size 10: keep the last title inside the plot
    title_x = [min(x, plan.width - 3.2 * len(name) - 2) for x, name in zip(plan.x, names)]
    titles = pd.DataFrame({"x": title_x, "title": names, "y": HEADER / 2})
    headers = alt.Chart(titles).mark_text(fontSize=10, color="#555555", tooltip=None).encode(
        x=alt.X("x:Q", **px), y=alt.Y("y:Q", **px), text="title:N")
    return alt.layer(links, link_targets, under, maps, targets, input_labels, headers,
                     *_legend(plan)).properties(
        width=plan.width, height=plan.height, padding=0,
        autosize=alt.AutoSizeParams(type="none")).configure_view(stroke=None)


@lru_cache(maxsize=32)
def spec(sizes: tuple[int, ...], width: int = 420, max_height: int | None = None) -> dict:
    """``network_chart(sizes, width)`` as a Vega-Lite dict, built once; do not modify it
    (``live.with_data`` copies it with the frame's tables)."""
    return network_chart(sizes, width, max_height).to_dict()


def model_sizes(model: nn.Sequential) -> tuple[int, ...]:
    """``(inputs, hidden widths…, outputs)``: the diagram's columns."""
    found = health.layers(model)
    return (found[0][0].in_features, *(linear.out_features for linear, _ in found))


def run_options(run) -> dict:
    """``encode``, ``active`` and ``output_range`` of a ``minidl.train.Run``, for
    ``network_data`` and ``unit_image``: every candidate input feature (``hparams.FEATURES``)
    in the run's input encoding, which of them the run's network reads, and its training
    targets' range."""
    scale, shift = (2.0, -1.0) if run.config.regression else data.target_affine(
        run.config.targets)  # a regression's targets lie in [−1, 1]
    inputs, features = run.config.inputs, run.config.features
    return {"encode": lambda X: data.encode_inputs(X, inputs, hparams.FEATURES),
            "active": [f in features for f in hparams.FEATURES],
            "output_range": (shift, shift + scale)}


def input_names(run) -> tuple[str, ...]:
    """The diagram's names of a run's inputs: every candidate feature's label (x₁, x₂, x₁², …,
    sin x₂), those the run does not read drawn dimmed."""
    return hparams.FEATURE_LABELS


def diagram_sizes(run) -> tuple[int, ...]:
    """The diagram's columns for a run: every candidate input, then the network's layers."""
    return (len(hparams.FEATURES), *model_sizes(run.model)[1:])


def clicked_feature(unit: str | None) -> str | None:
    """The input feature (``hparams.FEATURES``) a click on the input unit ``unit`` of a run's
    diagram (``run_options``) switches on or off; None for any other unit."""
    column, _, index = (unit or "").partition(":")
    if column != "0" or not index.isdigit() or int(index) >= len(hparams.FEATURES):
        return None
    return hparams.FEATURES[int(index)]


def selected_unit(event: Mapping | None, name: str = SELECT, field: str = "unit"
                  ) -> str | None:
    """The unit key (``"column:index"``) a click (``SELECT``) or the pointer (``HOVER``)
    selected, from what ``st.vega_lite_chart(..., on_select="rerun",
    selection_mode=[SELECT, HOVER, LINK])`` returned; None when nothing is selected.
    (A selection reports the ``field`` of what was clicked: a link's click is a unit
    selection without a unit.)"""
    if not event:
        return None
    selection = event.get("selection", {}) if isinstance(event, Mapping) else \
        getattr(event, "selection", {})
    picked = selection.get(name) if isinstance(selection, Mapping) else None
    if isinstance(picked, Mapping):  # {"unit": [...]}, as some Vega versions store it
        values = picked.get(field)
        picked = [{field: v} for v in values] if isinstance(values, list) else [picked]
    for row in picked or []:
        if isinstance(row, Mapping) and isinstance(row.get(field), str):
            return row[field]
    return None


def selected_link(event: Mapping | None) -> tuple[int, int, int] | None:
    """``(layer, row, column)`` of the link a click selected (``LINK``): weight ``W[row,
    column]`` of the network's Linear layer ``layer``; None when there is none."""
    key = selected_unit(event, LINK, "link")
    parts = (key or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def unit_image(model: nn.Sequential, unit: str,
               encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
               resolution: int = 100, output_range: tuple[float, float] = (0.0, 1.0),
               active: Sequence[bool] | None = None) -> str:
    """``unit_picture`` as a PNG data URL: the large map."""
    return boundary.data_url(boundary.png_bytes(
        unit_picture(model, unit, encode, resolution, output_range, active)))


def unit_picture(model: nn.Sequential, unit: str,
                 encode: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 resolution: int = 100, output_range: tuple[float, float] = (0.0, 1.0),
                 active: Sequence[bool] | None = None) -> torch.Tensor:
    """Unit ``unit`` (``"column:index"``, as in the ``UNITS`` table) over the square at
    ``resolution``, coloured as in the diagram: ``(resolution, resolution, 3)`` uint8."""
    try:
        column, index = (int(part) for part in unit.split(":"))
        columns = unit_values(model, encode, resolution, active)
        if column < 0 or index < 0 or index >= columns[column].shape[1]:
            raise IndexError
    except (ValueError, IndexError, AttributeError):
        raise ValueError(f"Invalid unit (unit): {unit!r} (expected 'column:index' of this "
                         f"network)") from None
    kind = "input" if column == 0 else _activation_name(health.layers(model)[column - 1][1])
    shown = _shown(columns[column], kind, column, len(columns), output_range)[:, index]
    return boundary.colorize(shown.reshape(resolution, resolution))


def unit_title(unit: str, sizes: Sequence[int], input_names: Sequence[str] = INPUT_NAMES
               ) -> str:
    """``"hidden 2, unit 5"``, ``"input x₁"`` or ``"output 1 (class 1)"`` for a unit key
    ``"column:index"`` of a network of layer ``sizes``."""
    column, index = (int(part) for part in unit.split(":"))
    if column == 0:
        return f"input {input_names[index] if index < len(input_names) else index + 1}"
    if column == len(sizes) - 1:
        return f"output {index} (class {index})" if sizes[-1] > 1 else "output (value)"
    return f"{_column_titles(len(sizes))[column]}, unit {index + 1}"
