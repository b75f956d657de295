import base64
import json
import math
import struct
import zlib

import altair as alt
import pytest
import torch

from minidl import Config, Run, data, health, nn
from minidl.hparams import FEATURE_LABELS, FEATURES
from minidl.viz import boundary, live, network


def decode_png(url: str) -> torch.Tensor:
    """A data URL of an 8-bit RGB PNG → ``(h, w, 3)`` uint8."""
    raw = base64.b64decode(url.split(",", 1)[1])
    w, h = struct.unpack(">II", raw[16:24])
    pos, body = 8, b""
    while pos < len(raw):
        length = struct.unpack(">I", raw[pos:pos + 4])[0]
        if raw[pos + 4:pos + 8] == b"IDAT":
            body += raw[pos + 8:pos + 8 + length]
        pos += length + 12
    rows = torch.frombuffer(bytearray(zlib.decompress(body)), dtype=torch.uint8).view(h, -1)
    assert bool((rows[:, 0] == 0).all())  # filter "none" on every scanline
    return rows[:, 1:].reshape(h, w, 3)


def model(sizes: list[int], activation: str = "tanh", seed: int = 0) -> nn.Sequential:
    m = nn.mlp(sizes, activation)
    m.init_params("xavier", gain=1.0, generator=torch.Generator().manual_seed(seed))
    return m


def layers_of(spec: dict) -> dict[str, dict]:
    """The spec's layers by mark type, the first of each (the diagram's own: the legend's
    rules and text come last)."""
    found: dict[str, dict] = {}
    for layer in spec["layer"]:
        found.setdefault(layer["mark"]["type"], layer)
    return found


@pytest.mark.parametrize("sizes", [[2, 25, 25, 25, 2], [2, 3, 2], [2] + [64] * 6 + [2],
                                   [7, 8, 4, 2]])
def test_units_and_links_match_the_architecture(sizes):
    names = tuple(f"f{i}" for i in range(sizes[0]))
    # seven inputs: x₁, x₂, x₁², x₂², x₁x₂, sin x₁, sin x₂, as features will be
    encode = None if sizes[0] == 2 else (
        lambda X: torch.cat([X, X**2, X[:, :1] * X[:, 1:], torch.sin(X)], dim=1))
    tables = network.network_data(model(sizes), 420, encode=encode, input_names=names)
    units, links = tables[network.UNITS], tables[network.LINKS]
    assert len(units) == sum(sizes)
    assert units.groupby("column").size().tolist() == sizes
    k = network.default_links(sizes)
    assert len(links) == sum(n_out * min(k, n_in) for n_in, n_out in zip(sizes, sizes[1:]))
    assert list(units["name"][:sizes[0]]) == list(names)


def test_all_links_are_drawn_when_asked_and_carry_their_weight_and_sign():
    m = model([2, 4, 3, 2])
    links = network.network_data(m, 420, max_links=100)[network.LINKS]
    weights = torch.cat([lin.weight.reshape(-1) for lin, _ in health.layers(m)])
    assert sorted(links["weight"]) == pytest.approx(sorted(weights.tolist()))
    assert ((links["weight"] >= 0) == (links["sign"] == "positive")).all()
    strongest = links.loc[links["weight"].abs().idxmax()]
    assert strongest["stroke"] == links["stroke"].max()


def test_links_are_drawn_on_one_scale_so_shrunk_weights_draw_thinner():
    # the report's diagram with all weights shrunk 100-fold, as L1 does: the links must thin
    # (a scale relative to the largest weight drew them exactly as thick as before)
    sizes = [2, 25, 25, 25, 2]
    m = model(sizes)
    before = network.network_data(m, 380)[network.LINKS]
    for linear, _ in health.layers(m):
        linear.weight.mul_(0.01)
    after = network.network_data(m, 380)[network.LINKS]
    assert after["weight"].to_numpy() == pytest.approx(0.01 * before["weight"].to_numpy())
    unclipped = (before["weight"].abs() < network.FULL_WEIGHT).to_numpy()
    assert unclipped.mean() > 0.9
    assert after["stroke"].to_numpy()[unclipped] == pytest.approx(
        0.1 * before["stroke"].to_numpy()[unclipped])
    # one weight draws one width in every network (√|w|, thickest from |w| = 1, 0 is nothing)
    plan = network.layout(sizes, 380)
    widths = network.link_width([0.0, 0.01, 0.25, 1.0, 30.0, -1.0], plan)
    thickest = widths[3]
    assert list(widths) == pytest.approx([0.0, 0.1 * thickest, 0.5 * thickest, thickest,
                                          thickest, thickest])
    assert after["stroke"].max() < 0.5 * before["stroke"].max()


def test_the_diagram_has_a_legend_of_its_link_scale_and_colours():
    spec = network.spec((2, 25, 25, 25, 2), 380)
    texts = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    legend = json.dumps([texts, spec["datasets"]])
    for word in ("|weight|", "0.01", "0.1", "positive", "negative"):
        assert word in legend
    rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"
             and layer["data"]["name"] != network.LINKS]       # the links and their targets
    drawn = [row for layer in rules for row in spec["datasets"][layer["data"]["name"]]]
    plan = network.layout((2, 25, 25, 25, 2), 380)
    assert [row["stroke"] for row in drawn[:3]] == pytest.approx(
        list(network.link_width(network.LEGEND_WEIGHTS, plan)))
    assert all(row["y"] > plan.centre_all(1).max() + plan.unit / 2 for row in drawn)
    assert all(row["x2"] <= plan.width for row in drawn)


def test_kept_links_are_the_strongest_into_each_unit():
    m = model([2, 20, 2])
    w = health.layers(m)[1][0].weight  # (2, 20): into the outputs
    links = network.network_data(m, 420, max_links=3)[network.LINKS]
    into_out0 = links[(links["between"] == "hidden 1 → output")
                      & (links["target"] == "out 0 (class 0)")]
    assert sorted(into_out0["weight"].abs()) == pytest.approx(
        sorted(w[0].abs().topk(3).values.tolist()))


def test_link_colours_follow_the_boundary_classes():
    spec = network.spec((2, 3, 2), 420)
    scale = layers_of(spec)["rule"]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"])) == {
        "positive": boundary.CLASS_COLORS[1], "negative": boundary.CLASS_COLORS[0]}


def test_each_unit_has_its_maps_mean_colour_beneath_it_while_a_new_map_loads():
    m = model([2, 5, 2])
    units = network.network_data(m, 420)[network.UNITS]
    for url, fill in zip(units["url"], units["fill"]):
        mean = decode_png(url).float().mean((0, 1)).round().int().tolist()
        assert fill == "#{:02x}{:02x}{:02x}".format(*mean)
    kinds = [(layer["mark"]["type"], layer["data"].get("name"))
             for layer in network.spec((2, 5, 2), 420)["layer"]]
    under, maps = kinds.index(("rect", network.UNITS)), kinds.index(("image", network.UNITS))
    assert under < maps  # drawn first, so the map covers it once loaded


def test_tooltips_name_their_fields_and_never_show_a_data_url():
    spec = network.spec((2, 5, 2), 420)
    marks = layers_of(spec)
    assert marks["image"]["mark"]["tooltip"] is None
    [targets] = [layer for layer in spec["layer"]
                 if layer["mark"]["type"] == "rect" and "tooltip" in layer["encoding"]]
    unit_tips = [t["title"] if "title" in t else t["field"]
                 for t in targets["encoding"]["tooltip"]]
    assert {"layer", "unit", "mean activation", "min", "max", "bias"} <= set(unit_tips)
    link_tips = [t["title"] for t in marks["rule"]["encoding"]["tooltip"]]
    assert {"from", "to", "weight"} <= set(link_tips)
    for layer in spec["layer"]:
        tips = layer.get("encoding", {}).get("tooltip", [])
        assert all(t["field"] not in ("url", "x0", "x1", "y0", "y1") for t in tips)
        assert layer["mark"].get("tooltip", "explicit") is None or tips
    assert "data:image" not in json.dumps(spec)


def test_unit_tooltip_values_are_the_maps_statistics():
    m = model([2, 4, 2], "relu")
    units = network.network_data(m, 420)[network.UNITS]
    values = network.unit_values(m, None, 24)  # the default grid, whatever the unit's size
    hidden = units[units["column"] == 1]
    assert list(hidden["mean"]) == pytest.approx(values[1].mean(0).tolist(), rel=1e-5)
    assert list(hidden["max"]) == pytest.approx(values[1].amax(0).tolist(), rel=1e-5)
    assert list(hidden["bias"]) == pytest.approx(health.layers(m)[0][0].bias.tolist())
    assert units["bias"][:2].isna().all()  # inputs have none


def test_unit_statistics_do_not_depend_on_the_drawing_size():
    m = model([2, 30, 2])
    small, large = (network.network_data(m, w)[network.UNITS] for w in (200, 900))
    assert network.layout((2, 30, 2), 200).unit < network.layout((2, 30, 2), 900).unit
    assert list(small["mean"]) == list(large["mean"])
    assert decode_png(small["url"][5]).shape[0] < decode_png(large["url"][5]).shape[0]


def test_all_maps_come_from_one_forward_pass_of_the_grid():
    m = model([2, 6, 2], "sigmoid")
    columns = network.unit_values(m, None, 12)
    assert [c.shape for c in columns] == [(144, 2), (144, 6), (144, 2)]
    assert torch.equal(columns[0], boundary.grid(12))
    assert torch.allclose(columns[-1], m.forward(boundary.grid(12)))


def test_a_unit_map_is_a_picture_of_its_activation():
    # one hidden unit that is tanh(4·(x₁ − 0.5)): blue on the left, orange on the right
    m = nn.mlp([2, 1, 2], "tanh")
    lin = health.layers(m)[0][0]
    lin.weight.copy_(torch.tensor([[4.0, 0.0]]))
    lin.bias.fill_(-2.0)
    units = network.network_data(m, 420, resolution=16)[network.UNITS]
    picture = decode_png(units["url"][2]).float()  # units: x₁, x₂, the hidden unit, …
    left, right = picture[:, 0], picture[:, -1]
    assert (left[:, 2] > left[:, 0]).all() and (right[:, 0] > right[:, 2]).all()
    assert torch.equal(picture[0], picture[-1])  # no change along x₂


def test_the_diagram_fits_its_width(sizes=(2, 64, 64, 64, 64, 64, 64, 2)):
    for width in (420, 300, 900):
        plan = network.layout(sizes, width)
        units = network.network_data(model(list(sizes), "relu"), width)[network.UNITS]
        assert units["x0"].min() >= 0 and units["x1"].max() <= width
        assert units["y0"].min() >= 0 and units["y1"].max() <= plan.height
        spec = network.spec(sizes, width)
        assert spec["width"] == width and spec["autosize"]["type"] == "none"


def test_units_of_a_small_network_are_larger_than_of_a_wide_one():
    assert network.layout((2, 3, 2), 420).unit > network.layout((2, 64, 2), 420).unit


def test_too_narrow_a_diagram_is_refused_clearly():
    with pytest.raises(ValueError, match=r"Invalid diagram width \(width\): 50"):
        network.layout((2, 3, 2), 50)


def test_input_names_must_match_the_inputs():
    with pytest.raises(ValueError, match="3 input names for 2 inputs"):
        network.network_data(model([2, 3, 2]), 420, input_names=("a", "b", "c"))


def test_encoded_inputs_feed_the_maps():
    run = Run(Config(hidden=(3,), n_train=20, n_test=10, inputs="standardised"))
    tables = network.network_data(run.model, 420,
                                  encode=lambda X: data.encode_inputs(X, run.config.inputs))
    inputs = tables[network.UNITS].iloc[:2]
    assert (inputs["min"] < 0).all() and (inputs["max"] > 0).all()  # centred, not [0, 1]


def test_a_diverged_model_draws_without_error():
    m = model([2, 4, 2])
    health.layers(m)[0][0].weight.fill_(math.nan)
    tables = network.network_data(m, 420)
    assert len(tables[network.UNITS]) == 8


def test_spec_is_valid_vega_lite_and_the_data_swaps_in():
    m = model([2, 5, 2])
    chart = network.network_chart((2, 5, 2), 420)
    assert chart.to_dict()["layer"]
    spec = network.spec((2, 5, 2), 420)
    full = live.with_data(spec, {k: v.to_dict("records")
                                 for k, v in network.network_data(m, 420).items()})
    alt.LayerChart.from_dict(full)  # validates against the schema
    assert network.spec((2, 5, 2), 420) is spec


def test_clicking_a_unit_selects_it_by_key():
    params = {p["name"]: p["select"] for p in network.spec((2, 3, 2), 420)["params"]}
    assert params[network.SELECT]["fields"] == ["unit"]
    event = {"selection": {network.SELECT: [{"unit": "1:2"}]}}
    assert network.selected_unit(event) == "1:2"
    assert network.selected_unit({"selection": {network.SELECT: []}}) is None
    assert network.selected_unit({"selection": {}}) is None
    assert network.selected_unit(None) is None


def test_clicking_a_link_selects_its_weight_by_layer_row_and_column():
    m = model([2, 3, 2])
    links = network.network_data(m, 420, max_links=100)[network.LINKS]
    w = health.layers(m)[1][0].weight
    for _, link in links[links["between"] == "hidden 1 → output"].iterrows():
        layer, row, column = map(int, link["link"].split(":"))
        assert layer == 1 and link["weight"] == pytest.approx(float(w[row, column]))
        assert (link["source"], link["target"]) == (f"unit {column + 1}",
                                                   f"out {row} (class {row})")
    params = {p["name"]: p["select"] for p in network.spec((2, 3, 2), 420)["params"]}
    assert params[network.LINK]["fields"] == ["link"] and params[network.LINK]["on"] == "click"
    assert network.selected_link({"selection": {network.LINK: [{"link": "1:0:2"}]}}) == (1, 0, 2)
    for bad in ([], [{"link": None}], [{"link": "1:x:2"}], [{"link": "1:2"}]):
        assert network.selected_link({"selection": {network.LINK: bad}}) is None


def test_pointing_at_a_unit_selects_it_until_the_pointer_leaves():
    params = {p["name"]: p["select"] for p in network.spec((2, 3, 2), 420)["params"]}
    hover = params[network.HOVER]
    assert hover["on"] == "pointerover" and hover["clear"] == "pointerout"
    assert hover["fields"] == ["unit"] and params[network.SELECT]["on"] == "click"
    event = {"selection": {network.SELECT: [{"unit": "1:0"}], network.HOVER: [{"unit": "2:1"}]}}
    assert network.selected_unit(event, network.HOVER) == "2:1"
    assert network.selected_unit(event) == "1:0"
    assert network.selected_unit({"selection": {network.HOVER: []}}, network.HOVER) is None


def test_the_large_map_of_a_selected_unit():
    m = model([2, 3, 2])
    url = network.unit_image(m, "1:2", resolution=40)
    assert decode_png(url).shape == (40, 40, 3)
    small = decode_png(network.network_data(m, 420, resolution=40, max_height=2000)
                       [network.UNITS]["url"][4])
    assert small.shape[0] <= 40
    for bad in ("9:0", "1:3", "x", "1"):
        with pytest.raises(ValueError, match="Invalid unit"):
            network.unit_image(m, bad)


@pytest.mark.parametrize("targets, expected", [("one_hot", (0.0, 1.0)), ("signed", (-1.0, 1.0))])
def test_run_options_carry_the_runs_encoding_and_targets(targets, expected):
    run = Run(Config(hidden=(3,), n_train=20, n_test=10, inputs="standardised",
                     targets=targets, features=("x2", "sinx1")))
    options = network.run_options(run)
    assert options["output_range"] == expected
    X = boundary.grid(4)
    # every candidate feature, in the run's encoding; the run's own marked active
    assert torch.equal(options["encode"](X), data.encode_inputs(X, "standardised", FEATURES))
    assert options["active"] == [f in ("x2", "sinx1") for f in FEATURES]
    assert network.unit_image(run.model, "2:1", resolution=8, **options).startswith(
        "data:image/png;base64,")


def test_inputs_the_network_does_not_read_are_drawn_dimmed_without_links():
    run = Run(Config(hidden=(3,), n_train=20, n_test=10, features=("x2", "sinx1")))
    tables = network.network_data(run.model, 380, input_names=network.input_names(run),
                                  max_links=100, **network.run_options(run))
    units, links = tables[network.UNITS], tables[network.LINKS]
    inputs = units[units["column"] == 0]
    assert list(inputs["name"]) == list(FEATURE_LABELS)
    assert list(inputs.loc[inputs["active"], "name"]) == ["x₂", "sin x₁"]
    assert set(inputs.loc[~inputs["active"], "opacity"]) == {network.INACTIVE_OPACITY}
    # the links leave the inputs the network reads, with their weights in its input order
    first = links[links["between"] == "input → hidden 1"]
    w = run.model.param()[0][0]
    assert sorted(first["weight"]) == pytest.approx(sorted(w.reshape(-1).tolist()))
    for name, column in (("x₂", 0), ("sin x₁", 1)):
        assert sorted(first.loc[first["source"] == name, "weight"]) == pytest.approx(
            sorted(w[:, column].tolist()))
    # the hidden units' maps are the network's own: the same as with only its inputs drawn
    alone = network.network_data(run.model, 380, input_names=("x₂", "sin x₁"),
                                 encode=lambda X: data.encode_inputs(X, "raw", ("x2", "sinx1")))
    hidden = units[units["column"] > 0].reset_index(drop=True)
    own = alone[network.UNITS]
    assert list(hidden["mean"]) == pytest.approx(list(own[own["column"] > 0]["mean"]))
    assert network.diagram_sizes(run) == (7, 3, 2)
    picture = network.unit_picture(run.model, "0:4", resolution=8, **network.run_options(run))
    assert picture.shape == (8, 8, 3)                     # a dimmed input's map, large


def test_a_click_on_an_input_names_its_feature():
    assert network.clicked_feature("0:2") == "x1sq" and network.clicked_feature("0:6") == "sinx2"
    for other in ("1:2", "0:7", "0:x", "", None):
        assert network.clicked_feature(other) is None
