"""The layer-health chart: ``minidl.health`` statistics over epochs, one line per layer.

Small multiples, one panel per statistic: gradient norm, update-to-weight
ratio, spread of the units' outputs and weight norm on log scales (they span
decades: the point is to see a layer whose gradient is 1000× smaller than its
neighbours'), and the share of dead (ReLU) or saturated (Tanh / Sigmoid) units
in percent.  Like the live
charts (``minidl.viz.live``) it reads a named data set, so a live view builds
the spec once (``spec``) and swaps in ``data(run.health)`` every frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import altair as alt
import pandas as pd

from .. import health

HEALTH = "layer_health"
TOOLTIP_FORMAT = ".4~g"           # at most 4 significant digits

PANELS = {
    "grad_norm": ("gradient norm ‖∇θ‖", True),
    "weight_norm": ("weight norm ‖θ‖", True),
    "update_ratio": ("update / weight ‖Δθ‖/‖θ‖ per epoch", True),
    "spread": ("spread of unit outputs over the data", True),
    "dead_share": ("dead ReLU units (%)", False),
    "saturated_share": ("saturated units (%)", False),
}


def panels(activation: str) -> tuple[str, ...]:
    """The statistics worth a panel for ``activation`` (a share only where it is defined)."""
    share = {"relu": ("dead_share",), "tanh": ("saturated_share",),
             "sigmoid": ("saturated_share",)}.get(activation.lower(), ())
    return ("grad_norm", "update_ratio", "spread", "weight_norm", *share)


def health_chart(activation: str = "tanh", width: int = 420, height: int = 130,
                 columns: int | None = None) -> alt.ConcatChart:
    """Small multiples of ``minidl.health`` statistics over epochs, one line per layer;
    norms and ratios on log scales, shares in percent.  Reads ``HEALTH``
    (``data(run.health)``).  ``width`` is the whole chart's; panels sit
    ``columns`` abreast (default: 2 when ``width`` ≥ 560, else 1)."""
    shown = panels(activation)
    columns = columns or (2 if width >= 560 else 1)
    panel_width = max(100, int((width - 70 * columns) / columns))
    charts = []
    for stat in shown:
        title, log = PANELS[stat]
        value = f"datum.{stat}"
        base = alt.Chart(alt.NamedData(name=HEALTH)).transform_filter(
            f"isValid({value}) && isFinite({value})" + (f" && {value} > 0" if log else ""))
        if not log:
            base = base.transform_calculate(percent=f"100 * {value}")
        field = stat if log else "percent"
        charts.append(base.mark_line(point=alt.OverlayMarkDef(size=12), strokeWidth=1.6).encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y(f"{field}:Q", title=None,
                    scale=alt.Scale(type="log") if log else alt.Scale(domain=[0, 100]),
                    axis=alt.Axis(format="~g" if log else "d")),
            color=alt.Color("layer:N", title="layer", sort=None,
                            scale=alt.Scale(scheme="dark2"),
                            legend=alt.Legend(orient="top", columns=4)),
            tooltip=[alt.Tooltip("epoch:Q"), alt.Tooltip("layer:N"),
                     alt.Tooltip(f"{field}:Q", title=title, format=TOOLTIP_FORMAT)],
        ).properties(title=alt.TitleParams(title, fontSize=11, anchor="start"),
                     width=panel_width, height=height))
    return alt.concat(*charts, columns=columns).resolve_scale(color="shared")


@lru_cache(maxsize=16)
def spec(activation: str = "tanh", width: int = 420, height: int = 130) -> dict:
    """``health_chart`` as a Vega-Lite dict, built once (fill it with ``live.with_data`` and ``data``)."""
    return health_chart(activation, width, height).to_dict()


def data(rows: Sequence[Mapping] | pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table ``health_chart`` reads: ``Run.health`` (one row per layer per epoch)."""
    frame = pd.DataFrame(rows, columns=["epoch", "layer", "units", *health.STATISTICS])
    return {HEALTH: frame}
