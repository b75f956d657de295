"""The Playground's regression, driven by Streamlit's AppTest (no browser): the problem type
in the sidebar, the output map, test loss as the metric, the link."""

import json
import math

import helpers
import pyarrow as pa
import torch
from streamlit.testing.v1 import AppTest

from minidl.engine.run import Run
from minidl.viz import boundary

SMALL = {"n_train": "60", "n_test": "60"}


def open_app(**query: str) -> AppTest:
    return helpers.open_app({**SMALL, **query})


def run_of(at: AppTest) -> Run:
    return at.session_state["pg_trainer"].run


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def labels(at: AppTest) -> set[str]:
    return {m.label for m in at.metric}


def sidebar_keys(at: AppTest) -> set[str]:
    return {e.key for kind in ("selectbox", "slider", "number_input")
            for e in getattr(at.sidebar, kind)}


def step(at: AppTest) -> AppTest:
    at.button(key="pg_step").click().run()
    assert not at.exception, at.exception
    return helpers.settle(at, "pg_trainer")


def boundary_chart(at: AppTest) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("vega_lite_chart")
                if any(d.name == "points" for d in c.proto.datasets))


def points(at: AppTest):
    data = next(d.data.data for c in at.get("vega_lite_chart") for d in c.proto.datasets
                if d.name == "points")
    return pa.ipc.open_stream(data).read_all().to_pandas()


def test_choosing_regression_trains_on_the_plane_and_shows_a_falling_test_loss():
    at = open_app(optimizer="adam", lr="0.005", batch_size="5", noise="0.1")
    assert "pg_noise" in sidebar_keys(at)
    at.selectbox(key="pg_problem").set_value("regression").run()
    assert not at.exception, at.exception
    run = run_of(at)
    assert (run.config.problem, run.config.dataset, run.config.noise) == (
        "regression", "plane", 0.0)
    assert run.config.sizes()[-1] == 1
    assert at.selectbox(key="pg_dataset").options == ["plane", "multi-Gaussian"]
    assert "pg_noise" not in sidebar_keys(at)  # no classes to flip
    assert at.query_params["problem"] == "regression" and at.query_params["dataset"] == "plane"
    assert "Test accuracy" not in labels(at) and "Mean guess's test loss" in labels(at)
    first = float(metric(at, "Test loss"))
    for _ in range(3):
        step(at)
    assert run_of(at).epoch == 3 and metric(at, "Epoch") == "3 / 200"
    last = float(metric(at, "Test loss"))
    assert last == round(run_of(at).history[-1]["test_loss"], 4)
    assert last < first and last < float(metric(at, "Mean guess's test loss"))
    assert math.isclose(float(metric(at, "Test RMSE")), math.sqrt(last), abs_tol=2e-3)
    assert not at.error and not at.exception


def test_the_output_map_colours_points_by_their_target_value():
    at = open_app(problem="regression", dataset="multigauss")
    assert run_of(at).config.dataset == "multigauss"
    colours = [layer["encoding"]["color"] for layer in boundary_chart(at)["layer"]
               if "color" in layer.get("encoding", {})]
    # the points' colour: their value on the output map's blue–orange scale
    assert colours == [{"field": "label", "type": "quantitative", "title": "target",
                        "legend": {"orient": "bottom"},
                        "scale": {"domain": [-1.0, -0.5, 0.0, 0.5, 1.0], "clamp": True,
                                  "range": boundary.VALUE_COLORS}}]
    assert boundary.VALUE_COLORS[0] == boundary.CLASS_COLORS[0]
    assert boundary.VALUE_COLORS[-1] == boundary.CLASS_COLORS[1]
    table = points(at)
    assert table["label"].dtype.kind == "f" and table["label"].between(-1, 1).all()
    assert table["label"].nunique() > 50  # values, not two classes
    assert any("output, its predicted value" in c.value for c in at.caption)


def test_switching_back_to_classification_draws_the_disk_again():
    at = open_app(problem="regression")
    at.selectbox(key="pg_problem").set_value("classification").run()
    assert not at.exception, at.exception
    config = run_of(at).config
    assert (config.problem, config.dataset, config.sizes()[-1]) == ("classification", "disk", 2)
    assert "Test accuracy" in labels(at) and "problem" not in at.query_params


def test_a_link_with_a_mismatched_data_set_opens_with_a_plain_warning():
    at = open_app(problem="regression", dataset="spiral")
    assert run_of(at).config.dataset == "plane"
    shown = " ".join(str(e.value) for e in [*at.warning, *at.code, *at.text])
    assert "dataset=spiral: not a data set for regression; using plane." in shown


def test_a_regression_trains_to_its_budget_in_the_training_service():
    at = open_app(problem="regression", epochs="3", optimizer="adam", lr="0.005")
    at.button(key="pg_train").click().run()
    helpers.settle(at, "pg_trainer")
    run = run_of(at)
    assert run.epoch == 3 and metric(at, "Epoch") == "3 / 3"
    assert metric(at, "Test loss") == f"{run.history[-1]['test_loss']:.4f}"
    assert "Epoch budget reached" in at.success[0].value
    assert "accuracy" not in at.success[0].value
    assert not at.exception


def test_a_diverging_regression_is_a_message_not_a_traceback():
    at = open_app(problem="regression", lr="1.0")
    at.button(key="pg_train").click().run()
    helpers.settle(at, "pg_trainer")
    assert run_of(at).diverged and not at.exception
    assert "diverged" in at.error[0].value
    assert metric(at, "Test loss") == "diverged" and metric(at, "Test RMSE") == "diverged"


def test_a_regression_model_file_imports_into_the_page_with_its_problem_type():
    from minidl import Config
    from minidl.engine import export
    trained = Run(Config(problem="regression", dataset="multigauss", n_train=60, n_test=60,
                         jitter=0.05, hidden=(6, 4), epochs=5)).fit(epochs=2)
    fresh = open_app()  # a classification
    uploader = next(u for u in fresh.file_uploader if "Import" in u.label)
    uploader.set_value(("model.json", export.to_json(trained).encode(), "application/json")).run()
    assert not fresh.exception, fresh.exception
    run = run_of(fresh)
    assert run.epoch == 2 and run.config == trained.config
    assert torch.equal(run.model.param()[0][0], trained.model.param()[0][0])
    assert fresh.selectbox(key="pg_problem").value == "regression"
    assert fresh.selectbox(key="pg_dataset").value == "multigauss"
    assert metric(fresh, "Test loss") == f"{trained.history[-1]['test_loss']:.4f}"
    fresh.run()
    assert run_of(fresh) is run  # the widgets agree with the run
