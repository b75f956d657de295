"""Altair charts of a cross-validation sweep: pure functions from result tables to charts.

Both read ``sweeps.SweepResult.table`` rows (``activation``, ``optimizer``, the
hyperparameters, ``split<i>_score``, ``mean_score``, ``std_score``,
``diverged``).  Diverged configurations (NaN scores) are left out of the
curves; a learning rate at which every configuration diverged has no point.

- ``lr_charts``: mean CV accuracy ± one standard deviation against the learning
  rate (log axis), one chart per optimizer, one line per activation.  At each
  learning rate the line shows the *best* configuration of the other
  hyperparameters — the curve the grid search maximises over.
- ``fold_chart``: the per-fold validation accuracies of chosen configurations
  (one row each, a dot per fold, a tick at the mean), to see how much the
  folds disagree.
"""

from __future__ import annotations

import math

import altair as alt
import pandas as pd

from .. import hparams
from .tables import ACCURACY_FORMAT


def describe(row: pd.Series | dict) -> str:
    """``"lr 0.01, batch 10, β₁ 0.9"``: the hyperparameters of a result row (beyond the
    learning rate and batch size, only those away from their default)."""
    keys = [k for k in hparams.grid_keys(row["optimizer"]) if k in ("lr", "batch_size")
            or (k in row and row[k] != hparams.TABLE[k].default)]
    return hparams.describe(row, keys)



def lr_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Per (activation, optimizer, lr): the best non-diverged row's mean ± std and settings."""
    columns = ["activation", "optimizer", "lr", "mean", "std", "low", "high", "settings",
               "tried", "diverged"]
    if table.empty or "lr" not in table:
        return pd.DataFrame(columns=columns)
    rows = []
    for (a, o, lr), group in table.groupby(["activation", "optimizer", "lr"], sort=True):
        finite = group[~group["diverged"].astype(bool) & group["mean_score"].notna()]
        if finite.empty:
            continue
        best = finite.loc[finite["mean_score"].idxmax()]
        mean, std = float(best["mean_score"]), float(best["std_score"])
        rows.append({"activation": hparams.label(a), "optimizer": hparams.label(o), "lr": lr,
                     "mean": mean, "std": std, "low": mean - std, "high": min(1.0, mean + std),
                     "settings": describe(best), "tried": len(group),
                     "diverged": int(group["diverged"].astype(bool).sum())})
    return pd.DataFrame(rows, columns=columns)


def lr_charts(table: pd.DataFrame, height: int = 320) -> list[alt.LayerChart]:
    """Mean CV accuracy ± std against learning rate: a chart per optimizer, a line per
    activation, all on one y scale.  Each fits the width it is given (the page puts them in
    columns: side by side on a wide screen, one under another on a phone — a facet has a
    fixed width and overflowed the column)."""
    frame = lr_frame(table)
    if frame.empty:
        return []
    # one y scale for every panel, from the lowest band down to a 5 % step, up to 100 %
    y_scale = alt.Scale(domain=[math.floor(20 * float(frame["low"].min())) / 20, 1.0])
    # above the plot, small and untitled (the names say what they are), so that it fits a
    # third of a laptop's column
    color = alt.Color("activation:N", title=None,
                      sort=[hparams.label(a) for a in hparams.REPORT_ACTIVATIONS],
                      legend=alt.Legend(orient="top", labelFontSize=11, symbolSize=40,
                                        columnPadding=8))
    tooltip = ["activation:N", "optimizer:N", alt.Tooltip("lr:Q", format="~g"),
               alt.Tooltip("mean:Q", title="mean CV accuracy", format=ACCURACY_FORMAT),
               alt.Tooltip("std:Q", title="std", format=ACCURACY_FORMAT),
               alt.Tooltip("settings:N", title="best settings at this lr"),
               alt.Tooltip("tried:Q", title="configurations"),
               alt.Tooltip("diverged:Q", title="diverged")]
    charts = []
    for optimizer in [hparams.label(o) for o in hparams.OPTIMIZERS]:
        part = frame[frame["optimizer"] == optimizer]
        if part.empty:
            continue
        # ticks at the grid's learning rates, not at round numbers the grid never tried
        x = alt.X("lr:Q", title="learning rate (log scale)", scale=alt.Scale(type="log"),
                  axis=alt.Axis(format="~g", values=sorted(float(v) for v in part["lr"].unique())))
        base = alt.Chart().encode(x=x, color=color)
        band = base.mark_rule(strokeWidth=2, opacity=0.55).encode(
            y=alt.Y("low:Q", title="mean CV accuracy ± std", axis=alt.Axis(format="%"),
                    scale=y_scale), y2="high:Q")
        line = base.mark_line(point=alt.OverlayMarkDef(size=45, filled=True)).encode(
            y=alt.Y("mean:Q"), tooltip=tooltip)
        charts.append(alt.layer(band, line, data=part).properties(
            title=alt.TitleParams(optimizer), height=height,
            autosize=alt.AutoSizeParams(type="fit", contains="padding")))
    return charts


def fold_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table of chosen rows' per-fold scores: ``configuration``, ``fold``, ``accuracy``, ``mean``."""
    columns = ["configuration", "pair", "settings", "fold", "accuracy", "mean"]
    out = []
    for _, row in rows.iterrows():
        splits = sorted((c for c in row.index if c.startswith("split") and c.endswith("_score")),
                        key=lambda c: int(c[5:-6]))
        pair = hparams.pair_label((row["activation"], row["optimizer"]))
        settings = describe(row)
        for c in splits:
            score = row[c]
            if hparams.is_missing(score):
                continue
            out.append({"configuration": f"{pair} · {settings}", "pair": pair,
                        "settings": settings, "fold": int(c[5:-6]) + 1, "accuracy": float(score),
                        "mean": None if hparams.is_missing(row["mean_score"]) else float(row["mean_score"])})
    return pd.DataFrame(out, columns=columns)


def fold_chart(rows: pd.DataFrame) -> alt.LayerChart:
    """A dot per fold and a tick at the mean, one line per chosen configuration; as wide as
    the width it is given, each configuration named on two lines (pair, then settings)."""
    frame = fold_frame(rows)
    order = list(dict.fromkeys(frame["configuration"]))
    y = alt.Y("configuration:N", title=None, sort=order, axis=alt.Axis(
        labelExpr="split(datum.label, ' · ')", labelLimit=0, labelOverlap=False))
    tooltip = ["pair:N", "settings:N", "fold:O",
               alt.Tooltip("accuracy:Q", title="validation accuracy", format=ACCURACY_FORMAT)]
    dots = alt.Chart().mark_point(filled=True, size=70, opacity=0.85).encode(
        x=alt.X("accuracy:Q", title="validation accuracy per fold", axis=alt.Axis(format="%"),
                scale=alt.Scale(zero=False)),
        y=y, color=alt.Color("fold:N", title="fold", legend=alt.Legend(orient="bottom")),
        tooltip=tooltip)
    mean = alt.Chart().mark_tick(color="black", thickness=2, size=18).encode(
        x="mean:Q", y=y, tooltip=["pair:N", "settings:N",
                                  alt.Tooltip("mean:Q", title="mean", format=ACCURACY_FORMAT)])
    # the size includes the axis labels and the legend (Streamlit fits the chart to it):
    # ~40 px per row, room for two lines and a gap
    height = 130 + 40 * len(order)
    return alt.layer(dots, mean, data=frame).properties(
        height=height, autosize=alt.AutoSizeParams(type="fit", contains="padding"))
