"""minidl.viz.live and minidl.viz.boundary: the pictures the Playground draws."""

import base64
import json
import struct
import zlib

import altair as alt
import pandas as pd
import pytest
import torch

from minidl import Config, Run, data, nn
from minidl.viz import boundary
from minidl.viz import live as charts


def decode_png(url: str) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of an 8-bit RGB PNG data URL (unfiltered scanlines)."""
    png = base64.b64decode(url.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    idat_length = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41:41 + idat_length])
    rows = [raw[i * (3 * width + 1) + 1:(i + 1) * (3 * width + 1)] for i in range(height)]
    return width, height, b"".join(rows)


def test_grid_covers_the_square_from_the_top_left():
    g = boundary.grid(4)
    assert g.shape == (16, 2)
    assert g[0].tolist() == [0.125, 0.875]     # top-left cell centre
    assert g[3].tolist() == [0.875, 0.875]     # top-right
    assert g[-1].tolist() == [0.875, 0.125]    # bottom-right


def test_scores_are_the_class_1_score_on_the_grid():
    model = nn.mlp([2, 4, 2], "tanh")
    model.init_params("xavier", 1.0, torch.Generator().manual_seed(0))
    s = boundary.scores(model, 5)
    out = model.forward(boundary.grid(5))
    assert s.shape == (5, 5)
    assert torch.allclose(s.reshape(-1), out[:, 1] - out[:, 0])


def test_colors_run_from_class_0_to_class_1_and_discrete_uses_only_the_ends():
    s = torch.tensor([[-5.0, -1.0, 0.0, 1.0, 5.0]])
    smooth, discrete = boundary.colorize(s), boundary.colorize(s, discrete=True)
    blue, orange = (59, 120, 181), (232, 137, 59)
    assert tuple(smooth[0, 0].tolist()) == blue == tuple(smooth[0, 1].tolist())
    assert tuple(smooth[0, 4].tolist()) == orange == tuple(smooth[0, 3].tolist())
    assert tuple(smooth[0, 2].tolist()) == (242, 242, 242)
    assert {tuple(c) for c in discrete[0].tolist()} == {blue, orange}


def test_nan_scores_are_grey_not_an_error():
    rgb = boundary.colorize(torch.tensor([[float("nan"), 1.0]]))
    assert rgb[0, 0].tolist() == [160, 160, 160]


def test_png_data_url_decodes_to_the_pixels():
    rgb = torch.randint(0, 256, (3, 5, 3), dtype=torch.uint8)
    width, height, pixels = decode_png(boundary.data_url(boundary.png_bytes(rgb)))
    assert (width, height) == (5, 3) and pixels == rgb.numpy().tobytes()


def test_a_trained_disk_model_draws_class_1_in_the_middle():
    run = Run(Config(optimizer="adam", lr=0.01, batch_size=20, epochs=30))
    run.fit()
    width, height, pixels = decode_png(boundary.boundary_image(run.model, 100, discrete=True))
    assert (width, height) == (100, 100)
    centre = pixels[(50 * 100 + 50) * 3:(50 * 100 + 50) * 3 + 3]
    corner = pixels[0:3]
    assert tuple(centre) == (232, 137, 59) and tuple(corner) == (59, 120, 181)


def frames():
    X, y = data.disk(10, seed=1)
    predicted = torch.zeros_like(y)
    return charts.points_frame(X, y, "train"), charts.wrong_frame(X, y, predicted, "train"), y


def test_points_and_mistakes_frames():
    points, wrong, y = frames()
    assert list(points.columns) == ["x", "y", "label", "set"] and len(points) == 10
    assert len(wrong) == int(y.sum())           # everything predicted 0: the 1s are wrong
    assert wrong.column_names == ["x", "y", "set"]


def layer_marks(spec: dict) -> list:
    return [layer["mark"]["type"] for layer in spec["layer"]]


def test_boundary_chart_layers_image_disk_points_and_mistakes():
    chart = charts.boundary_chart(((0.5, 0.5), data.DISK_RADIUS), size=300)
    assert isinstance(chart, alt.LayerChart)
    spec = chart.to_dict()
    assert layer_marks(spec) == ["rect", "image", "line", "point", "point", "text", "text"]
    assert [layer["data"].get("name") for layer in spec["layer"]] == [
        charts.UNDERLAY, charts.IMAGE, None, charts.POINTS, charts.WRONG, charts.IMAGE,
        charts.IMAGE]
    spec["layer"] = spec["layer"][1:]  # the underlay aside (below), the image is the first
    assert spec["width"] == spec["height"] == 300
    assert spec["autosize"]["type"] == "pad"   # the square stays square
    # one image mark over the whole square, not a rect per cell
    image = spec["layer"][0]["encoding"]
    assert {"x", "x2", "y", "y2", "url", "opacity"} <= set(image)
    # hovering the picture or the outline shows nothing (not the data URL, not x1 1, y1 1)
    assert spec["layer"][0]["mark"]["tooltip"] is None
    assert spec["layer"][1]["mark"]["tooltip"] is None
    assert {t["field"] for t in spec["layer"][2]["encoding"]["tooltip"]} == {"x", "y", "label",
                                                                             "set"}
    assert spec["layer"][1]["data"]["sequence"] == {"start": 0, "stop": 362, "step": 2,
                                                    "as": "degree"}


def test_boundary_chart_without_a_disk_has_no_outline():
    assert layer_marks(charts.boundary_chart(None).to_dict()) == ["rect", "image", "point",
                                                                  "point", "text", "text"]


def test_boundary_data_fills_the_named_data_sets():
    points, wrong, _ = frames()
    tables = charts.boundary_data("data:image/png;base64,AAAA", points, wrong)
    assert set(tables) == {charts.IMAGE, charts.POINTS, charts.WRONG, charts.UNDERLAY}
    assert tables[charts.UNDERLAY].num_rows == 0
    assert tables[charts.IMAGE].to_pylist() == [{
        "x0": 0.0, "x1": 1.0, "y0": 0.0, "y1": 1.0, "url": "data:image/png;base64,AAAA",
        "opacity": 1.0, "note": ""}]
    # the frames as Arrow tables, as Streamlit sends them: the same rows
    assert tables[charts.POINTS].to_pandas().equals(points)
    assert tables[charts.WRONG] is wrong
    faded = charts.boundary_data("data:image/png;base64,AAAA", points, wrong, "press Train")
    [row] = faded[charts.IMAGE].to_pylist()
    assert [row["opacity"], row["note"]] == [0.2, "press Train"]


def test_the_underlay_is_the_picture_in_coarse_cells_and_shows_only_under_a_full_one():
    # a picture of four quadrants, row 0 at the top: the underlay's cells take their colours
    picture = torch.zeros(100, 100, 3, dtype=torch.uint8)
    picture[:50, :50] = torch.tensor([255, 0, 0], dtype=torch.uint8)   # top left
    picture[50:, 50:] = torch.tensor([0, 0, 255], dtype=torch.uint8)   # bottom right
    cells = charts.underlay(picture, cells=4).to_pandas()
    assert len(cells) == 16
    assert ((cells["x1"] - cells["x0"]) == 0.25).all() and ((cells["y1"] - cells["y0"]) == 0.25).all()
    top_left = cells[(cells["x1"] <= 0.5) & (cells["y0"] >= 0.5)]
    bottom_right = cells[(cells["x0"] >= 0.5) & (cells["y1"] <= 0.5)]
    assert set(top_left["color"]) == {"#ff0000"} and set(bottom_right["color"]) == {"#0000ff"}
    assert set(cells["color"]) == {"#ff0000", "#0000ff", "#000000"}
    points, wrong, _ = frames()
    url = "data:image/png;base64,AAAA"
    under = charts.underlay(picture, cells=4)
    assert charts.boundary_data(url, points, wrong, under=under)[charts.UNDERLAY].num_rows == 16
    # under a faded picture (before training) it would show through: none
    assert charts.boundary_data(url, points, wrong, "press Train",
                                under=under)[charts.UNDERLAY].num_rows == 0


@pytest.mark.parametrize("metric", ["loss", "acc"])
def test_curve_chart_folds_train_and_test(metric):
    spec = charts.curve_chart(metric).to_dict()
    assert spec["data"] == {"name": charts.HISTORY}
    assert spec["transform"][0]["fold"] == [f"train_{metric}", f"test_{metric}"]
    assert (spec["encoding"]["y"]["scale"].get("type") == "log") == (metric == "loss")


def test_curve_chart_rejects_unknown_metrics():
    with pytest.raises(ValueError, match="metric"):
        charts.curve_chart("f1")


def test_spec_is_built_once_and_with_data_does_not_change_it():
    a = charts.spec("curve", "loss")
    assert charts.spec("curve", "loss") is a
    history = pd.DataFrame({"epoch": [1], "train_loss": [0.2], "test_loss": [0.3],
                            "train_acc": [0.9], "test_acc": [0.8], "diverged": [False]})
    before = json.dumps(a, sort_keys=True)
    filled = charts.with_data(a, charts.history_data(history))
    assert list(filled["datasets"][charts.HISTORY].columns) == [
        "epoch", "train_loss", "test_loss", "train_acc", "test_acc"]
    assert json.dumps(a, sort_keys=True) == before
    with pytest.raises(ValueError, match="kind"):
        charts.spec("pie")
