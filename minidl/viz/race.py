"""Altair charts of a race (``minidl.race``): every contestant's loss and test accuracy per
epoch, overlaid, one colour per contestant.  Pure functions; no Streamlit here.

The charts read the named data set ``HISTORY`` (``Race.history_frame()``: ``name``,
``epoch``, ``train_loss``, ``test_acc``, …), so a spec is built once and every redraw only
swaps the table (``live.with_data``).
"""

from __future__ import annotations

from functools import lru_cache

import altair as alt
import pandas as pd

from .live import HISTORY

METRICS = {"train_loss": ("training loss (MSE, log scale)", "~g", ".4f"),
           "test_acc": ("test accuracy", ".0%", ".2%")}


def curves_chart(metric: str, names: tuple[str, ...], target: float | None = None,
                 height: int = 220) -> alt.LayerChart:
    """``metric`` (a key of ``METRICS``) per epoch, one line per contestant (``names``, in
    the race's order: the colours stay put as the ranking changes); with ``target``, a
    dashed rule at that accuracy."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    title, axis_format, tip_format = METRICS[metric]
    scale = alt.Scale(type="log") if metric == "train_loss" else alt.Scale(zero=False,
                                                                           domainMax=1.0)
    lines = alt.Chart(alt.NamedData(name=HISTORY)).mark_line(strokeWidth=1.6, clip=True).encode(
        x=alt.X("epoch:Q", title="epoch", scale=alt.Scale(domainMin=0),
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y(f"{metric}:Q", title=title, scale=scale, axis=alt.Axis(format=axis_format)),
        color=alt.Color("name:N", title=None, sort=list(names),
                        scale=alt.Scale(domain=list(names), scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=320)),
        tooltip=["name:N", alt.Tooltip("epoch:Q", format="d"),
                 alt.Tooltip(f"{metric}:Q", title=title.split(" (")[0], format=tip_format)])
    # a dot at the head of every line: where each contestant is now (and, after one epoch,
    # the only mark a line of one point has)
    heads = lines.mark_point(filled=True, size=36, opacity=1.0).transform_joinaggregate(
        last="max(epoch)", groupby=["name"]).transform_filter("datum.epoch == datum.last")
    layers: list[alt.Chart] = [lines, heads]
    if target is not None and metric == "test_acc":
        layers.append(alt.Chart(pd.DataFrame({"target": [target]})).mark_rule(
            strokeDash=[4, 3], color="#555555").encode(y="target:Q"))
    return alt.layer(*layers).properties(
        width="container", height=height, title=title,
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


@lru_cache(maxsize=32)
def spec(metric: str, names: tuple[str, ...], target: float | None = None) -> dict:
    """The Vega-Lite dict of ``curves_chart``, built once per race (do not modify it)."""
    return curves_chart(metric, names, target).to_dict()


def history_data(history: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table the charts read: one row per contestant per epoch (diverged rows dropped:
    their numbers are NaN or absurd)."""
    kept = history[~history["diverged"]]
    return {HISTORY: kept[["name", "epoch", "train_loss", "test_acc"]]}
