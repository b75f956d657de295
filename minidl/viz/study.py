"""Altair figures of a reproduction study (``minidl.reproduce.Study``).

``accuracy_figure``: the report's Fig. 2 — mean test accuracy per activation ×
optimizer pair with ±1 standard-error bars, the report's values beside ours.
``loss_figure``: its Fig. 3 — mean training loss per epoch, one line per pair,
with a shaded ±1 standard-error band.  ``save_figures`` writes both.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from ..experiments.reproduce import PAPER_MIN_ACCURACY, Study
from ..hparams import pair_label


def _pair_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["pair"] = [pair_label(p) for p in zip(frame["activation"], frame["optimizer"])]
    return frame


def accuracy_figure(summary: pd.DataFrame) -> alt.LayerChart:
    """Points at mean test accuracy (%) with ±1 SE error bars; report values as red ticks."""
    frame = _pair_labels(summary)
    frame["accuracy"] = 100 * frame["test_acc"]
    frame["low"] = 100 * (frame["test_acc"] - frame["test_acc_se"])
    frame["high"] = 100 * (frame["test_acc"] + frame["test_acc_se"])
    frame["report"] = 100 * frame["paper_test_acc"]
    order = frame["pair"].tolist()
    # every pair named, whatever the column's width: slanted labels need only ~16 px each
    # (Vega's overlap check counts their upright boxes and would hide every other one)
    x = alt.X("pair:N", sort=order, title=None,
              axis=alt.Axis(labelAngle=-45, labelOverlap=False, labelLimit=0))
    base = alt.Chart(frame).encode(x=x)
    y_title = "mean test accuracy (%)"
    tooltip = ["pair", alt.Tooltip("accuracy:Q", format=".2f", title="ours (%)"),
               alt.Tooltip("test_acc_se:Q", format=".4f", title="SE"),
               alt.Tooltip("report:Q", format=".2f", title="report (%)")]
    points = base.mark_point(filled=True, size=80).encode(
        y=alt.Y("accuracy:Q", title=y_title, scale=alt.Scale(zero=False)),
        color=alt.value("#1f77b4"), tooltip=tooltip)
    bars = base.mark_errorbar(ticks=alt.MarkConfig(size=12)).encode(
        y=alt.Y("low:Q", title=y_title), y2="high:Q")
    report = base.mark_tick(color="#d62728", thickness=3, size=24).encode(
        y="report:Q", tooltip=tooltip)
    floor = alt.Chart(pd.DataFrame({"y": [100 * PAPER_MIN_ACCURACY]})).mark_rule(
        strokeDash=[4, 4], color="#d62728").encode(y="y:Q")
    return alt.layer(bars, points, report, floor).properties(
        title=alt.TitleParams("Mean test accuracy ± 1 SE over runs", subtitle=[
            "blue: ours · red tick: the report's value",
            "dashed: the report's 96.9 % floor"]),
        width=520, height=320)


def loss_figure(curves: pd.DataFrame, log_scale: bool = True) -> alt.LayerChart:
    """Mean training loss per epoch with a ±1 SE band, one colour per pair."""
    frame = _pair_labels(curves)
    frame["low"] = (frame["train_loss"] - frame["train_loss_se"]).clip(lower=1e-6)
    frame["high"] = frame["train_loss"] + frame["train_loss_se"]
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    base = alt.Chart(frame).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")))
    # the legend comes from the lines: the translucent band would make it pale
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q", scale=scale), y2="high:Q",
                                              color=alt.Color("pair:N", legend=None))
    line = base.mark_line().encode(color=alt.Color("pair:N", title="optimizer + activation"),
        y=alt.Y("train_loss:Q", title="training loss (MSE)", scale=scale),
        tooltip=["pair", "epoch", alt.Tooltip("train_loss:Q", format=".4f"),
                 alt.Tooltip("train_loss_se:Q", format=".4f", title="SE")])
    return alt.layer(band, line).resolve_legend(color="independent").properties(
        title="Training loss, mean ± 1 SE over runs", width=520, height=320)


def save_figures(study: Study, folder: str | Path) -> list[Path]:
    """Fig. 2 and Fig. 3 as HTML, and as PNG where vl-convert is installed."""
    folder = Path(folder)
    written = []
    figures = {"fig2_accuracy": accuracy_figure(study.summary),
               "fig3_loss": loss_figure(study.loss_curves)}
    for name, chart in figures.items():
        chart.save(folder / f"{name}.html")
        written.append(folder / f"{name}.html")
        try:
            chart.save(folder / f"{name}.png")
            written.append(folder / f"{name}.png")
        except Exception:  # no PNG converter (vl-convert) installed: HTML only
            pass
    return written
