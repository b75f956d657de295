"""The ablation's figure (``minidl.ablation``): pair × convention, one epoch budget.

A cell per (convention, pair) coloured by mean test accuracy — red below the
report's 96.9 % floor, green above — with the mean written in it, so one look
says which conventions bring all nine pairs over the floor.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from ..experiments.ablation import BEST, REPORT_FLOOR
from ..experiments.reproduce import PAIRS
from ..hparams import pair_label


def figure(summary: pd.DataFrame, epochs: int) -> alt.LayerChart:
    """Mean test accuracy (%) per convention (rows, in run order) and pair (columns)."""
    frame = summary[summary["epochs"] == epochs].copy()
    frame["pair"] = [pair_label(p) for p in zip(frame["activation"], frame["optimizer"])]
    frame["accuracy"] = 100 * frame["test_acc"]
    frame["text"] = frame["accuracy"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f}")
    rows = sorted(dict.fromkeys(frame["convention"]), key=lambda c: c == BEST)  # BEST last
    columns = [pair_label(p) for p in PAIRS if pair_label(p) in set(frame["pair"])]
    base = alt.Chart(frame).encode(
        x=alt.X("pair:N", sort=columns, title=None, axis=alt.Axis(labelAngle=-30, orient="top")),
        y=alt.Y("convention:N", sort=rows, title=None, axis=alt.Axis(labelLimit=320)))
    floor = 100 * REPORT_FLOOR
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("accuracy:Q", title="test accuracy %",
                        scale=alt.Scale(domain=[50, floor, 100], range=["#b2182b", "#f7f7f7",
                                                                           "#1a9850"])),
        tooltip=["convention", "pair", alt.Tooltip("accuracy:Q", format=".2f", title="mean %"),
                 alt.Tooltip("test_acc_se:Q", format=".4f", title="SE"), "runs", "diverged"])
    text = base.mark_text(fontSize=11).encode(text="text:N")
    return alt.layer(cells, text).properties(
        title=alt.TitleParams(f"Table I under each convention, {epochs} epochs", subtitle=(
            f"mean test accuracy % over runs · green at or above the report's {floor:.1f} %")),
        width=60 * len(columns), height=24 * len(rows))


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
