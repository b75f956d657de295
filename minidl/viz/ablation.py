"""The ablation's figure (``minidl.ablation``): pair × convention, one epoch budget.

A cell per (convention, pair) coloured by mean test accuracy — red below the
report's 96.9 % floor, green above — with the mean written in it, so one look
says which conventions bring all nine pairs over the floor.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import altair as alt
import pandas as pd

from ..experiments.ablation import BEST, REPORT_FLOOR
from ..experiments.reproduce import PAIRS
from ..hparams import pair_label

# Every label readable at any column width (the page stretches the figure to its column):
# a convention's name on two lines at most, a pair's name upright above its column, a
# row's height fixed (``ROW_STEP``) so the cells never shrink to nothing, and the numbers
# white on the dark red cells (below ``DARK_BELOW`` %), black elsewhere (contrast ≥ 4.3).
LINE = 22  # characters per line of a convention's name
ROW_STEP = 30  # pixels per convention: two lines of 11 px
DARK_BELOW = 60


def wrapped(names: list[str]) -> str:
    """A Vega expression that writes each long name of ``names`` on lines of ``LINE``
    characters: ``{"MSE: sum over outputs, mean over batch": ["MSE: sum over outputs,",
    "mean over batch"]}[datum.label] || datum.label``."""
    lines = {n: textwrap.wrap(n, LINE) for n in names if len(n) > LINE}
    return f"{json.dumps(lines, ensure_ascii=False)}[datum.label] || datum.label"


def figure(summary: pd.DataFrame, epochs: int) -> alt.LayerChart:
    """Mean test accuracy (%) per convention (rows, in run order) and pair (columns)."""
    frame = summary[summary["epochs"] == epochs].copy()
    frame["pair"] = [pair_label(p) for p in zip(frame["activation"], frame["optimizer"])]
    frame["accuracy"] = 100 * frame["test_acc"]
    frame["text"] = frame["accuracy"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    rows = sorted(dict.fromkeys(frame["convention"]), key=lambda c: c == BEST)  # BEST last
    columns = [pair_label(p) for p in PAIRS if pair_label(p) in set(frame["pair"])]
    base = alt.Chart(frame).encode(
        x=alt.X("pair:N", sort=columns, title=None, axis=alt.Axis(
            orient="top", labelAngle=-90, labelOverlap=False, labelLimit=0, labelPadding=6)),
        y=alt.Y("convention:N", sort=rows, title=None, axis=alt.Axis(
            labelExpr=wrapped(rows), labelOverlap=False, labelLimit=0)))
    floor = 100 * REPORT_FLOOR
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("accuracy:Q", title="test accuracy %",
                        legend=alt.Legend(orient="bottom", direction="horizontal"),
                        scale=alt.Scale(domain=[50, floor, 100], range=["#b2182b", "#f7f7f7",
                                                                           "#1a9850"])),
        tooltip=["convention", "pair", alt.Tooltip("accuracy:Q", format=".2f", title="mean %"),
                 alt.Tooltip("test_acc_se:Q", format=".4f", title="SE"), "runs", "diverged"])
    text = base.mark_text(fontSize=11).encode(
        text="text:N", color=alt.condition(f"datum.accuracy < {DARK_BELOW}",
                                           alt.value("white"), alt.value("black")))
    # fit-x: the width (the page's column, or ``width`` when saved) holds the labels too;
    # the height grows with the rows (a number, not ``alt.Step``: in Streamlit a step height
    # made Vega-Lite warn in the browser's console that it dropped fit-y)
    return alt.layer(cells, text).properties(
        title=alt.TitleParams(f"Table I under each convention, {epochs} epochs", subtitle=[
            "mean test accuracy % over runs",
            f"green at or above the report's {floor:.1f} %"]),
        width=160 + 64 * len(columns), height=ROW_STEP * len(rows),
        autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def save_figures(summary: pd.DataFrame, folder: str | Path) -> list[Path]:
    """One figure per budget as HTML, and as PNG where vl-convert is installed."""
    folder = Path(folder)
    written = []
    for epochs in sorted(summary["epochs"].unique()):
        chart = figure(summary, int(epochs))
        for suffix in ("html", "png"):
            path = folder / f"ablation_{int(epochs)}.{suffix}"
            try:
                chart.save(path)
                written.append(path)
            except Exception:  # no PNG converter (vl-convert) installed: HTML only
                pass
    return written
