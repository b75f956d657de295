import json
import math

import altair as alt
import pytest

from minidl import Config, Run
from minidl.viz import health as health_chart
from minidl.viz import live


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "identity"])
def test_health_chart_has_a_panel_per_statistic(activation):
    run = Run(Config(activation=activation, hidden=(4, 3), n_train=40, n_test=10, epochs=2),
              health_share=math.inf)
    run.fit()
    spec = health_chart.spec(activation, 420)
    panels = health_chart.panels(activation)
    assert len(spec["concat"]) == len(panels)
    share = {"relu": "dead ReLU units (%)", "identity": None}.get(activation,
                                                                  "saturated units (%)")
    titles = [p["title"]["text"] for p in spec["concat"]]
    assert (share in titles) if share else len(titles) == 4
    full = live.with_data(spec, {k: v.to_dict("records")
                                 for k, v in health_chart.data(run.health).items()})
    alt.ConcatChart.from_dict(json.loads(json.dumps(full, default=str)))
    for panel in spec["concat"]:
        tip = panel["encoding"]["tooltip"][-1]
        assert tip["format"] == health_chart.TOOLTIP_FORMAT


def test_health_data_has_one_row_per_layer_and_epoch():
    run = Run(Config(hidden=(4,), n_train=30, n_test=10, epochs=3), health_share=math.inf)
    run.fit()
    frame = health_chart.data(run.health)[health_chart.HEALTH]
    assert len(frame) == 6 and set(frame["layer"]) == {"hidden 1", "output"}
    assert health_chart.data([])[health_chart.HEALTH].empty
