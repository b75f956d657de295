"""AppTest of the Cross-validation page: tiny sweeps launched, cancelled and resumed from the UI.

The page's sweeps run on a worker thread; AppTest's ``run_every`` fragments do
not tick by themselves, so the tests rerun the script until the sweep stops.
"""

import json
import re
import time

import helpers
import pytest
from streamlit.testing.v1 import AppTest

from minidl import hparams, jobs
from minidl.experiments import sweeps
from minidl.jobs import runner

results_dir = pytest.fixture(autouse=True)(helpers.results_dir)

APP = helpers.APP
PAGE = "pages/cross_validation.py"


def open_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    return at


def set_up(at: AppTest, lr: str = "0.01, 0.1", batch_size: str = "50", epochs: int = 1) -> None:
    """Tanh + Adam only, 2 folds; a grid of ``lr`` × ``batch_size``."""
    at.multiselect(key="cv_activations").set_value(["tanh"])
    at.multiselect(key="cv_optimizers").set_value(["adam"])
    at.number_input(key="cv_folds").set_value(2)
    at.number_input(key="cv_epochs").set_value(epochs)
    grid = {"lr": lr, "batch_size": batch_size, "beta1": "0.9", "beta2": "0.999", "eps": "1e-8"}
    for name, text in grid.items():
        at.text_input(key=f"cv_grid_adam_{name}").set_value(text)
    at.run()


def wait_until_stopped(at: AppTest, seconds: float = 60) -> None:
    """Rerun (each run polls the progress fragment once) until the sweep is no longer running."""
    deadline = time.monotonic() + seconds
    while at.get("progress") and time.monotonic() < deadline:
        time.sleep(0.1)
        at.run()
    assert not at.get("progress"), "the sweep did not stop in time"
    assert not at.exception


def results(at: AppTest):
    """The optimal-settings table and the full results table."""
    [optimal] = [d for d in at.dataframe if d.value.index.name == "activation"]
    [full] = [d for d in at.dataframe if str(d.key).startswith("cv_rows_")]
    return optimal, full


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.slow
def test_page_launches_a_tiny_sweep_through_to_its_tables(results_dir):
    at = open_page()
    assert metric(at, "Networks") == "3,480"  # prefilled with the full default grid
    assert at.text_input(key="cv_grid_sgd_lr").value == "0.0001, 0.001, 0.01, 0.1, 1.0"
    # the grid editor offers what the settings table searches: weight decay for every optimizer
    for o in hparams.OPTIMIZERS:
        weight_decay = at.text_input(key=f"cv_grid_{o}_weight_decay")
        assert (weight_decay.label, weight_decay.value) == ("weight decay (L2)", "0.0")
    assert at.text_input(key="cv_grid_adam_beta1").label == "β₁"
    set_up(at)
    # 2 configurations × 2 folds × 1 epoch × 10 steps (500 training rows a fold, batch 50)
    assert metric(at, "Networks") == "4" and metric(at, "Optimizer steps") == "40"
    at.button(key="cv_launch").click().run()
    wait_until_stopped(at)

    assert "Finished: 2 of 2 configurations" in at.success[0].value
    optimal, full = results(at)
    assert list(optimal.value.index) == ["tanh"]
    assert list(optimal.value.columns) == ["adam lr", "adam beta1", "adam beta2", "adam eps",
                                           "adam weight_decay", "adam l1", "adam batch_size",
                                           "adam accuracy"]
    table = full.value
    assert len(table) == 2 and sorted(table["lr"]) == [0.01, 0.1]
    assert "playground" not in table  # no link cells: the grid's took 2-3 clicks, two tabs
    # one click opens the optimal configuration in the Playground: a plain link button
    [button] = at.get("link_button")
    assert button.proto.url.startswith("./?")  # the Playground is at the root
    best = table.iloc[0]
    assert f"lr={best['lr']:g}" in button.proto.url and "optimizer=adam" in button.proto.url
    assert f"lr {best['lr']:g}" in button.proto.label
    lr_chart, fold_chart = (json.loads(c.proto.spec) for c in at.get("vega_lite_chart"))
    assert lr_chart["title"]["text"] == "Adam"  # a chart per optimizer: this sweep's one
    # one percentage format: the tables' accuracy columns and the charts' tooltips agree
    for frame, column in ((full, "mean_score"), (full, "split0_score"),
                          (optimal, "adam accuracy")):
        config = json.loads(frame.proto.columns)[column]
        assert config["type_config"]["format"] == "percent", config
        assert config["type_config"]["step"] == 1e-4  # 2 decimals: 70.27 %, 48.20 %
    formats = {t["field"]: t.get("format") for chart in (lr_chart, fold_chart)
               for layer in (chart.get("spec", chart)["layer"])
               for t in layer.get("encoding", {}).get("tooltip", []) if isinstance(t, dict)}
    assert formats["mean"] == formats["accuracy"] == ".2%", formats
    assert fold_chart["layer"][0]["encoding"]["x"]["field"] == "accuracy"
    assert at.get("download_button")
    [saved] = list(results_dir.iterdir())
    assert json.loads((saved / "sweep.json").read_text())["status"] == "finished"


def test_bad_grid_is_rejected_before_anything_runs(results_dir):
    at = open_page()
    # the settings table's messages (hparams.parse_values), saying whose grid
    for text, message in [("0.01, fast", "fast (expected a finite number in (0, 1e+06])"),
                          ("", "an empty list"),
                          ("-0.1", "-0.1 (expected a finite number in (0, 1e+06])")]:
        at.text_input(key="cv_grid_adam_lr").set_value(text).run()
        assert [e.value for e in at.error] == ["These settings cannot run yet:"]
        lines = at.code[0].value.splitlines()  # what was typed comes back as plain text
        assert any(message in line and line.startswith("Adam · ")
                   and "learning rate" in line.lower() for line in lines), lines
        assert at.button(key="cv_launch").disabled
    assert not results_dir.exists()


def test_sweep_past_the_cap_is_refused_with_the_estimate_and_the_cap(monkeypatch, results_dir):
    monkeypatch.setenv(sweeps.SWEEP.cap_env, "5000")  # the cap counts optimizer steps
    at = open_page()
    [error] = at.error
    assert "26,680,000 optimizer steps" in error.value and "cap of 5,000" in error.value
    assert at.button(key="cv_launch").disabled
    assert not results_dir.exists()


def test_cancel_stops_a_running_sweep_and_offers_resume(results_dir):
    at = open_page()
    # batch size 1: an epoch is 800 steps per network, so this sweep would run for seconds
    set_up(at, lr="0.001, 0.01, 0.03, 0.1", batch_size="1", epochs=100)
    at.button(key="cv_launch").click().run()
    # while this visitor's sweep trains, the form is closed and Launch says why it is off
    assert at.expander[0].label == "New sweep (one job at a time: yours is in the line)"
    assert at.button(key="cv_launch").disabled
    assert "You already have 1 job" in at.button(key="cv_launch").help
    at.button(key="cv_cancel").click().run()
    wait_until_stopped(at, seconds=30)
    # a cancel keeps the population's checkpoint (unless it came before the first epoch
    # ended): the message says exactly what is kept
    said = re.search(r"Cancelled: 0 of 4 configurations saved(, and 4 more "
                     r"part-trained \(\d+% of their optimizer steps\))?\. \*\*Resume\*\* "
                     "trains only the rest", at.warning[0].value)
    assert said, at.warning[0].value
    assert at.expander[0].label == "New sweep" and not at.button(key="cv_launch").disabled
    assert not at.button(key="cv_resume").disabled
    [saved] = list(results_dir.iterdir())
    assert jobs.info(sweeps.SWEEP, saved).status == "cancelled"
    assert bool(said[1]) == bool(jobs.find(saved).checkpoints("tanh-adam"))


class CancelAfterFirstPopulation(runner.Runner):
    def _report(self, done: int, total: int) -> bool:
        keep_going = super()._report(done, total)
        # the costlier population goes first: 2 configurations × 2 folds × 2 epochs × 2 steps
        # (batch 30); its last epoch's report cancels, before the other one starts
        if done >= 2 * 2 * 2 * 2:
            self.cancel()
        return keep_going


@pytest.mark.slow
def test_a_second_visit_lists_a_cancelled_sweep_and_resumes_it(results_dir):
    spec = sweeps.SweepSpec(("relu",), ("sgd",), {"sgd": {"lr": [0.01, 0.1],
                                                        "batch_size": [60, 30]}},
                            folds=2, epochs=2, n_train=120)
    folder = jobs.create(sweeps.SWEEP, spec)
    assert CancelAfterFirstPopulation(sweeps.SWEEP, folder).run().status == "cancelled"

    at = open_page()
    [label] = at.selectbox(key="cv_sweep").options
    assert "ReLU × SGD · 2 folds · 2 epochs" in label
    assert "Cancelled: 2 of 4 configurations saved. **Resume** trains only the rest." in \
        at.warning[0].value
    assert len(results(at)[1].value) == 2  # the finished half is shown already
    at.button(key="cv_resume").click().run()
    wait_until_stopped(at)
    assert "Finished: 4 of 4 configurations" in at.success[0].value
    assert len(results(at)[1].value) == 4


def test_a_result_row_opens_its_configuration_on_the_sweeps_data_in_the_playground():
    from urllib.parse import parse_qs, urlparse

    import numpy as np

    from ui import links, playground

    spec = sweeps.SweepSpec(("sigmoid",), ("adam",), {"adam": {"lr": [0.003]}}, folds=2,
                            epochs=3, data_seed=7, n_train=200)
    # a row as read back from a sweep's CSV: numpy scalars, NaN where another grid had a key
    row = {"activation": "sigmoid", "optimizer": "adam", "lr": np.float64(0.003),
           "beta1": 0.8, "beta2": 0.999, "eps": 1e-9, "weight_decay": np.float64(0.001),
           "batch_size": np.int64(20), "gain": 16.0, "momentum": float("nan"),
           "rho": float("nan"), "mean_score": 0.9}
    query = links.playground_query(row, spec)
    assert query == {"n_train": "200", "data_seed": "7", "activation": "sigmoid",
                     "gain": "16.0", "optimizer": "adam", "lr": "0.003", "beta1": "0.8",
                     "eps": "1e-09", "weight_decay": "0.001", "batch_size": "20",
                     "epochs": "3"}
    settings, warnings = playground.parse_query(query)
    assert not warnings
    assert {k: settings[k] for k in ("lr", "batch_size", "gain", "weight_decay", "epochs")} == {
        "lr": 0.003, "batch_size": 20, "gain": 16.0, "weight_decay": 0.001, "epochs": 3}
    link = links.playground_link(row, spec, "http://host/")
    assert link.startswith("http://host/?")
    assert parse_qs(urlparse(link).query)["optimizer"] == ["adam"]


CRAFTED = "`](https://evil.example) ## Owned ![x](https://evil.example/i.png)"


def markdown_texts(at: AppTest) -> list[str]:
    """Everything the page rendered as Markdown."""
    return [e.value for kind in ("markdown", "warning", "info", "error", "success", "caption")
            for e in getattr(at, kind)]


def test_an_error_from_a_meta_file_is_shown_as_plain_text(results_dir):
    folder = jobs.create(sweeps.SWEEP, sweeps.SweepSpec(
        ("relu",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [60]}}, folds=2, epochs=1,
        n_train=120))
    helpers.set_job(folder, status="failed", error=CRAFTED * 20)
    at = open_page()
    assert not any("evil" in text for text in markdown_texts(at))
    [block] = [c.value for c in at.code if "evil" in c.value]
    assert block.startswith(CRAFTED) and len(block) <= 300
    assert at.button(key="cv_resume")  # a failed sweep can still be resumed


def test_only_the_visitor_who_launched_a_sweep_can_cancel_or_resume_it(results_dir):
    owner = open_page()
    set_up(owner, lr="0.001, 0.01, 0.03, 0.1", batch_size="1", epochs=100)  # seconds of work
    owner.button(key="cv_launch").click().run()
    other = open_page()  # another visitor's session, on the same server
    assert other.get("progress") and not [b for b in other.button if b.key == "cv_cancel"]
    assert any("another visitor" in c.value for c in other.caption)
    owner.button(key="cv_cancel").click().run()
    wait_until_stopped(owner, seconds=30)
    other.run()
    assert not [b for b in other.button if b.key == "cv_resume"]
    assert any("another visitor" in c.value for c in other.caption)
    assert owner.button(key="cv_resume")  # its owner still can
    [saved] = list(results_dir.iterdir())
    assert jobs.info(sweeps.SWEEP, saved).owner == owner.session_state["_job_owner"]


def test_the_picker_opens_on_the_newest_sweep_with_results(results_dir):
    spec = sweeps.SweepSpec(("relu",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [60]}},
                            folds=2, epochs=1, n_train=120)
    finished = jobs.create(sweeps.SWEEP, spec)
    assert runner.Runner(sweeps.SWEEP, finished).run().status == "finished"
    empty = jobs.create(sweeps.SWEEP, spec)  # newer, but nothing to show
    helpers.set_job(empty, created="2999-01-01T00:00:00+00:00")
    at = open_page()
    assert at.selectbox(key="cv_sweep").value == finished.name
    assert at.selectbox(key="cv_sweep").options[0].endswith(empty.name[-6:])  # listed first


def test_a_sweep_another_process_trains_is_shown_running_without_controls(results_dir):
    spec = sweeps.SweepSpec(("relu",), ("sgd",), {"sgd": {"lr": [0.1], "batch_size": [60]}},
                            folds=2, epochs=1, n_train=120)
    folder = jobs.create(sweeps.SWEEP, spec)
    with jobs.lock(folder):  # as `minidl sweep --out FOLDER` holds it while it trains
        helpers.set_job(folder, status="running")
        at = open_page()
        assert "Trained by another process" in at.caption[-1].value
        assert at.get("progress")
        assert not [b for b in at.button if b.key in ("cv_resume", "cv_cancel")]
    at.run()  # its process ended without saying so: interrupted, and resumable here
    assert "Interrupted (its process stopped): 0 of 1 configuration saved." in at.warning[0].value
    assert at.button(key="cv_resume")
