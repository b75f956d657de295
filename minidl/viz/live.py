"""Altair chart builders: pure functions from data to charts; no Streamlit here.

``boundary_chart`` layers, bottom to top over the unit square:

1. the model's class-1 score as one PNG image (``minidl.viz.boundary``) — one
   image mark instead of 10 000 rects keeps a redraw cheap in the browser; faded,
   with a line of text over it, before the first epoch (an untrained network's
   boundary is noise, not an error);
2. the true rule's outline (the disk's circle) as a dashed line;
3. training and test points, coloured by label: training points are circles with a
   white rim, test points squares with a dark rim, so both stay visible on a
   region of their own colour (a regression's points: by their target value, on the
   image's blue–orange scale, so a point matches the map where it is learnt);
4. a black ✕ over every point the model currently gets wrong.

Only points and mistakes have tooltips (coordinates to 3 decimals); the image and
the outline have none.

``curve_chart`` draws a per-epoch metric (loss or accuracy) of the training
and test sets.

Live redraws: the charts read their changing data from *named* data sets
(``alt.NamedData``), so a chart's Vega-Lite spec is built (and validated by
Altair) once, and every frame only supplies fresh tables —
``with_data(spec, tables)``.  Building and validating the layered chart costs
~40–90 ms per call; swapping its tables costs a few ms, and because the spec
stays byte-identical the browser can update the data in place.
"""

from __future__ import annotations

import functools
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from .boundary import CLASS_COLORS, VALUE_COLORS

# names of the data sets the charts read; ``with_data`` fills them in
IMAGE, POINTS, WRONG, HISTORY = "boundary_image", "points", "wrong_points", "history"
UNDERLAY = "boundary_underlay"
UNDERLAY_CELLS = 20    # the underlay's rectangles per side

SET_SHAPES = {"train": "circle", "test": "square"}
SET_RIMS = {"train": "white", "test": "#333333"}
SET_COLORS = {"train": "#4c4c9c", "test": "#d6604d"}
# an ✕ in Vega's unit-square path coordinates
CROSS = "M-1,-1L1,1M1,-1L-1,1"


def _square(title: str) -> dict:
    return dict(scale=alt.Scale(domain=[0.0, 1.0], nice=False, zero=False), title=title,
                axis=alt.Axis(grid=False, tickCount=5))


def points_frame(X: torch.Tensor, y: torch.Tensor, set_name: str) -> pd.DataFrame:
    """One row per point: ``x``, ``y``, ``label``, ``set``."""
    return pd.DataFrame({"x": X[:, 0].numpy(), "y": X[:, 1].numpy(), "label": y.numpy(),
                         "set": set_name})


def wrong_frame(X: torch.Tensor, y: torch.Tensor, predicted: torch.Tensor, set_name: str
                ) -> pa.Table:
    """The rows of ``points_frame`` whose ``predicted`` label is not ``y`` (``x``, ``y``, ``set``),
    as Arrow: it is made at every redraw, and pandas' frame took longer than the rest of it."""
    mask = predicted != y
    count = int(mask.sum())
    return pa.table({"x": X[mask, 0].numpy(), "y": X[mask, 1].numpy(),
                     "set": pa.array([set_name] * count, pa.string())})


def boundary_chart(disk: tuple[tuple[float, float], float] | None = None, size: int = 420,
                   smooth: bool = True, regression: bool = False) -> alt.LayerChart:
    """Decision boundary image (over its ``underlay``) + true disk outline
    (``(center, radius)``) + points.  ``regression``: the image is the output map and the
    points' ``label`` is their target value in [−1, 1], coloured on the image's scale.

    Reads the named data sets ``UNDERLAY``, ``IMAGE`` (one row: ``url``), ``POINTS``
    (``points_frame``) and ``WRONG`` (``wrong_frame``); see ``boundary_data``.  ``smooth``
    lets the browser interpolate the image's pixels (False: crisp cells).
    """
    x, y = alt.X("x:Q", **_square("x₁")), alt.Y("y:Q", **_square("x₂"))

    image = alt.Chart(alt.NamedData(name=IMAGE)).mark_image(
        aspect=False, smooth=smooth, align="left", baseline="bottom", tooltip=None).encode(
        x=alt.X("x0:Q", **_square("x₁")), x2="x1:Q",
        y=alt.Y("y0:Q", **_square("x₂")), y2="y1:Q", url="url:N",
        opacity=alt.Opacity("opacity:Q", scale=None, legend=None))
    # the note: dark text on a white halo (the same text drawn first with a wide white rim)
    note_base = alt.Chart(alt.NamedData(name=IMAGE)).transform_calculate(
        cx="(datum.x0 + datum.x1) / 2", cy="(datum.y0 + datum.y1) / 2").encode(
        x=alt.X("cx:Q", **_square("x₁")), y=alt.Y("cy:Q", **_square("x₂")), text="note:N")
    notes = [note_base.mark_text(fontSize=16, fontWeight="bold", tooltip=None, **style)
             for style in ({"stroke": "white", "strokeWidth": 6, "color": "white"},
                           {"color": "#222222"})]
    under = alt.Chart(alt.NamedData(name=UNDERLAY)).mark_rect(tooltip=None).encode(
        x=alt.X("x0:Q", **_square("x₁")), x2="x1:Q", y=alt.Y("y0:Q", **_square("x₂")),
        y2="y1:Q", fill=alt.Fill("color:N", scale=None))  # fill: no legend to merge
    layers: list[alt.Chart] = [under, image]

    if disk is not None:
        (cx, cy), r = disk
        # the circle is generated in the browser: 0°, 2°, …, 360°, joined in order
        layers.append(alt.Chart(alt.sequence(0, 362, 2, as_="degree")).transform_calculate(
            x=f"{cx} + {r} * cos(datum.degree * PI / 180)",
            y=f"{cy} + {r} * sin(datum.degree * PI / 180)").mark_line(
            color="#222222", strokeDash=[5, 3], strokeWidth=1.5, tooltip=None).encode(
            x=x, y=y, order="degree:Q"))

    label_color = alt.Color("label:N", title="label",
                            scale=alt.Scale(domain=[0, 1], range=list(CLASS_COLORS)),
                            legend=alt.Legend(orient="bottom", labelExpr="'class ' + datum.label"))
    label_tip = alt.Tooltip("label:N", title="class")
    if regression:
        label_color = alt.Color("label:Q", title="target", scale=alt.Scale(
            domain=[-1.0, -0.5, 0.0, 0.5, 1.0], range=VALUE_COLORS, clamp=True),
            legend=alt.Legend(orient="bottom"))
        label_tip = alt.Tooltip("label:Q", title="target", format=".3f")
    set_shape = alt.Shape("set:N", title="set",
                          scale=alt.Scale(domain=list(SET_SHAPES), range=list(SET_SHAPES.values())),
                          legend=alt.Legend(orient="bottom"))
    # the same legend as the shape's: Vega-Lite merges the two (one field), and a hidden one
    # would conflict with it ("Conflicting legend property disable" in the browser's console)
    set_rim = alt.Stroke("set:N", title="set",
                         scale=alt.Scale(domain=list(SET_RIMS), range=list(SET_RIMS.values())),
                         legend=alt.Legend(orient="bottom"))
    where = [alt.Tooltip("x:Q", title="x₁", format=".3f"),
             alt.Tooltip("y:Q", title="x₂", format=".3f")]
    layers.append(alt.Chart(alt.NamedData(name=POINTS)).mark_point(
        filled=True, size=24, opacity=1.0, strokeWidth=0.6).encode(
        x=x, y=y, color=label_color, shape=set_shape, stroke=set_rim,
        tooltip=[*where, label_tip, alt.Tooltip("set:N")]))
    layers.append(alt.Chart(alt.NamedData(name=WRONG)).mark_point(
        shape=CROSS, size=34, color="black", strokeWidth=1.3, filled=False).encode(
        x=x, y=y, tooltip=[*where, alt.Tooltip("set:N", title="misclassified")]))
    layers += notes

    # "pad": the plot itself is size × size and axes / legends go around it (Streamlit's
    # default, "fit", would squeeze them into size × size and the square would not be square)
    return alt.layer(*layers).properties(width=size, height=size,
                                         autosize=alt.AutoSizeParams(type="pad"))


def underlay(picture: torch.Tensor, cells: int = UNDERLAY_CELLS) -> pa.Table:
    """``picture`` (``(h, w, 3)`` uint8, row 0 at the top) as ``cells × cells`` rectangles
    of its colour at their centres: ``x0``, ``x1``, ``y0``, ``y1``, ``color`` (Arrow, as
    ``wrong_frame``).

    Drawn beneath the picture they show while the browser decodes a new one: Vega draws an
    image mark only once its image has loaded, so without them a redraw was blank for that
    moment (7 frames in 30 sampled during training)."""
    h, w, _ = picture.shape
    centre = torch.arange(cells, dtype=torch.float64) + 0.5
    rows, columns = (centre * h / cells).long(), (centre * w / cells).long()
    hexes = picture[rows][:, columns].contiguous().numpy().tobytes().hex()
    return pa.table({**_cells(cells), "color": ["#" + hexes[i:i + 6]
                                                for i in range(0, len(hexes), 6)]})


@functools.cache
def _cells(cells: int) -> dict[str, np.ndarray]:
    """The underlay's rectangles, row-major from the top-left: ``x0``, ``x1``, ``y0``, ``y1``."""
    i, j = np.divmod(np.arange(cells * cells), cells)
    return {"x0": j / cells, "x1": (j + 1) / cells, "y0": 1 - (i + 1) / cells,
            "y1": 1 - i / cells}


def boundary_data(image_url: str, points: pd.DataFrame | pa.Table, wrong: pa.Table,
                  note: str = "", under: pa.Table | None = None) -> dict[str, pa.Table]:
    """The tables ``boundary_chart`` reads: the image spanning the square, points, mistakes,
    and the image's ``underlay`` (``under``; none under a faded image, or if None).

    ``points`` may also be that table already converted to Arrow (``pyarrow.Table``);
    ``wrong`` is ``wrong_frame``'s, ``under`` ``underlay``'s.
    ``note``: a line written over a faded image (e.g. before training); "" for none.

    While a run trains only the image and the mistakes change; the points table
    stays byte-identical, so the browser does not re-process it.  The tables are Arrow, as
    Streamlit sends them: its own conversion of these small frames from pandas took ~2 ms
    of every redraw, a fifth of it, and a class's redraws share the server's one Python.
    """
    return {
        IMAGE: pa.table({"x0": [0.0], "x1": [1.0], "y0": [0.0], "y1": [1.0],
                         "url": [image_url], "opacity": [0.2 if note else 1.0],
                         "note": [note]}),
        POINTS: points if isinstance(points, pa.Table) else arrow(points),
        WRONG: wrong,
        UNDERLAY: (under if under is not None and not note else
                   pa.table({k: pa.array([], pa.float64()) for k in ("x0", "x1", "y0", "y1")}
                            | {"color": pa.array([], pa.string())})),
    }


def arrow(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table, column by column (no index)."""
    return pa.table({c: frame[c].to_numpy() for c in frame.columns})


def curve_chart(metric: str, height: int = 170) -> alt.Chart:
    """``metric`` ("loss" or "acc") per epoch for the training and test sets.

    Reads the named data set ``HISTORY``: a run's history frame
    (``Run.history_frame()``: ``epoch``, ``train_loss``, ``test_loss``,
    ``train_acc``, ``test_acc``, …).  Loss is drawn on a log scale; accuracy's
    axis fits the data, so 95 % against 97 % stays visible.
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    title = "MSE loss (log scale)" if metric == "loss" else "accuracy"
    scale = alt.Scale(type="log") if metric == "loss" else alt.Scale(zero=False, domainMax=1.0)
    return alt.Chart(alt.NamedData(name=HISTORY)).transform_fold(
        [f"train_{metric}", f"test_{metric}"], as_=["series", "value"]).transform_calculate(
        set="split(datum.series, '_')[0]").mark_line(strokeWidth=1.8, clip=True).encode(
        # epochs are whole numbers: no 0.5 ticks while the first few epochs fill the axis
        x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domainMin=0),
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title, scale=scale,
                axis=alt.Axis(format=".0%" if metric == "acc" else "~g")),
        # the legend sits above the plot, never over the curves
        color=alt.Color("set:N", title="set", scale=alt.Scale(domain=list(SET_COLORS),
                                                               range=list(SET_COLORS.values())),
                        legend=alt.Legend(orient="top", title=None)),
        tooltip=[alt.Tooltip("epoch:Q", format="d"), "set:N",
                 alt.Tooltip("value:Q", title=title.split(" (")[0],
                             format=".2%" if metric == "acc" else ".4f")],
    ).properties(width="container", height=height, title=title,
                 # fit the width to the column; the height is the plot's own
                 autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def history_data(history: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table ``curve_chart`` reads: the run's per-epoch metrics."""
    return {HISTORY: history[["epoch", "train_loss", "test_loss", "train_acc", "test_acc"]]}


@lru_cache(maxsize=32)
def spec(kind: str, *args) -> dict:
    """The Vega-Lite dict of ``boundary_chart(*args)`` / ``curve_chart(*args)``, built once.

    Shared between calls: do not modify it; ``with_data`` makes the copy to send.
    """
    if kind == "boundary":
        return boundary_chart(*args).to_dict()
    if kind == "curve":
        return curve_chart(*args).to_dict()
    if kind == "editor":
        return editor_chart(*args).to_dict()
    raise ValueError(f"kind must be 'boundary', 'curve' or 'editor', got {kind!r}")


def with_data(spec_dict: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """A copy of ``spec_dict`` with the named data sets filled in (static ones kept), drawn
    on a canvas: Streamlit draws charts of under 2000 points as SVG, where every redraw
    rebuilds a DOM node per point, link and image."""
    return {**spec_dict, "usermeta": {"embedOptions": {"renderer": "canvas"}},
            "datasets": {**spec_dict.get("datasets", {}), **tables}}


BRUSH = "brush"  # the editor's interval selection: Streamlit reports it under this name


def editor_chart(size: int = 300) -> alt.Chart:
    """Your own points over the unit square, with a rectangle to drag (selection ``BRUSH``)
    where the page adds points.  Reads the named data set ``POINTS`` (``points_frame``)."""
    brush = alt.selection_interval(name=BRUSH, encodings=["x", "y"], clear="dblclick")
    label_color = alt.Color("label:N", title="class",
                            scale=alt.Scale(domain=[0, 1], range=list(CLASS_COLORS)),
                            legend=alt.Legend(orient="bottom", labelExpr="'class ' + datum.label"))
    return alt.Chart(alt.NamedData(name=POINTS)).mark_point(
        filled=True, size=26, opacity=1.0, stroke="white", strokeWidth=0.6).encode(
        x=alt.X("x:Q", **_square("x₁")), y=alt.Y("y:Q", **_square("x₂")), color=label_color,
        tooltip=[alt.Tooltip("x:Q", title="x₁", format=".3f"),
                 alt.Tooltip("y:Q", title="x₂", format=".3f"),
                 alt.Tooltip("label:N", title="class")],
    ).add_params(brush).properties(width=size, height=size,
                                   autosize=alt.AutoSizeParams(type="pad"))
