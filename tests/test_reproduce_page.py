"""The Reproduce page in ``AppTest``: settings, a tiny study run to its charts, saved studies.

Results go to a temporary ``$MINIDL_RESULTS_DIR``.  The page's study runs on a
worker thread; ``run_every`` fragments do not tick in ``AppTest``, so the tests
call ``at.run()`` until the progress bar is gone.
"""

import json
import time

import helpers
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from minidl import hparams, jobs
from minidl.experiments import reproduce, studies
from minidl.jobs import runner

ADAM_RELU, RMSPROP_TANH = ("relu", "adam"), ("tanh", "rmsprop")  # batch 20: quick


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv(studies.STUDY.cap_env, raising=False)
    return tmp_path


def open_page() -> AppTest:
    at = AppTest.from_file("../streamlit_app.py", default_timeout=60)
    at.switch_page("pages/reproduce.py")
    at.run()
    assert not at.exception, at.exception
    return at


def wait_for_study(at: AppTest, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while at.get("progress"):
        assert time.monotonic() < deadline, "the study did not finish"
        time.sleep(0.2)
        at.run()
        assert not at.exception, at.exception


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def chart_title(spec: dict) -> str:
    t = spec.get("title", "")
    return t.get("text", "") if isinstance(t, dict) else t


def study_charts(at: AppTest) -> list[dict]:
    """The study's Fig. 2 and Fig. 3 (the ablation's figure further down left out)."""
    return [c for c in charts(at) if not chart_title(c).startswith("Table I under each convention")]


def chart_data(at: AppTest, index: int) -> list[pd.DataFrame]:
    """The data sets Streamlit sent with chart ``index`` (as Arrow, beside the spec)."""
    chart = at.get("vega_lite_chart")[index]
    return [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]


def layer_scales(spec: dict) -> list[str | None]:
    return [layer["encoding"]["y"].get("scale", {}).get("type") for layer in spec["layer"]]


@pytest.mark.slow
def test_page_shows_the_reports_table_one_before_launching(results):
    at = open_page()
    assert at.title[0].value == "Reproduce"
    assert at.selectbox(key="rp_source").value == studies.PAPER
    assert at.multiselect(key="rp_pairs_paper").value == list(reproduce.PAPER_CONFIGS)
    assert (at.number_input(key="rp_runs").value, at.number_input(key="rp_epochs").value) == (
        10, 100)
    table = at.dataframe[0].value.set_index("pair")
    assert len(table) == 9
    assert table.loc["Adam + Tanh", "β₁"] == "0.8" and table.loc["SGD + Tanh", "β₁"] == ""
    assert "2,400,000 optimizer steps" in " ".join(c.value for c in at.caption)


@pytest.mark.slow
def test_a_cold_page_offers_the_readmes_studies_and_ablation_from_docs_results(results):
    at = open_page()  # an empty results folder: nothing saved yet
    assert not [i for i in at.info if i.value.startswith("No saved studies yet")]
    shipped = [o for o in at.selectbox(key="rp_view").options if "(docs/results)" in o]
    assert [o.split(" · ")[0] for o in shipped] == [
        "the README's ours200 (docs/results)", "the README's ours400 (docs/results)",
        "the README's paper400 (docs/results)"]
    assert [o.split(" · ")[-1] for o in shipped] == [
        "9 pairs × 10 runs × 200 epochs", *["9 pairs × 10 runs × 400 epochs"] * 2]
    assert len(study_charts(at)) == 2  # the first one's Fig. 2 and Fig. 3
    assert any("docs/results/ours200" in c.value and "read-only" in c.value for c in at.caption)
    assert not at.get("button") or "rp_resume" not in [b.key for b in at.button]
    assert at.selectbox(key="rp_ablation").value == "README"
    assert not at.error and not at.exception


@pytest.mark.slow
def test_a_tiny_study_runs_to_its_table_charts_and_downloads(results):
    at = open_page()
    at.multiselect(key="rp_pairs_paper").set_value([ADAM_RELU, RMSPROP_TANH])
    at.number_input(key="rp_runs").set_value(2)
    at.number_input(key="rp_epochs").set_value(2)
    at.run()
    assert at.dataframe[0].value["pair"].tolist() == ["Adam + ReLU", "RMSProp + Tanh"]
    at.button[0].click()
    at.run()
    assert at.get("progress") or at.get("vega_lite_chart")  # running, or already done
    wait_for_study(at)

    folder, = (results / "studies").iterdir()
    summary = reproduce.load_study(folder).summary
    expected = reproduce.run_study(reproduce.PAPER_CONFIGS, runs=2, epochs=2,
                                   pairs=[ADAM_RELU, RMSPROP_TANH]).summary
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)
    table = at.dataframe[1].value.set_index("pair")
    for row in summary.to_dict("records"):
        shown = table.loc[hparams.pair_label((row["activation"], row["optimizer"]))]
        assert shown["test accuracy % (mean ± SE)"] == (
            f"{100 * row['test_acc']:.2f} ± {100 * row['test_acc_se']:.2f}")
        assert shown["final train loss"] == f"{row['final_loss']:.4f}"
        assert shown["diverged runs"] == "0 of 2"

    fig2, fig3 = study_charts(at)
    assert fig2["title"]["text"] == "Mean test accuracy ± 1 SE over runs"
    points = next(d for d in chart_data(at, 0) if "accuracy" in d)
    assert points["accuracy"].tolist() == pytest.approx((100 * summary["test_acc"]).tolist())
    assert points["pair"].tolist() == ["Adam + ReLU", "RMSProp + Tanh"]
    assert {layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
            for layer in fig2["layer"]} >= {"errorbar", "point", "tick"}
    assert layer_scales(fig3) == ["log", "log"]
    assert len(at.get("download_button")) == 3

    at.toggle(key="rp_log").set_value(False)
    at.run()
    assert layer_scales(study_charts(at)[1]) == [None, None]

    # a second visit (a new session) lists the saved study and shows it again
    again = open_page()
    assert again.selectbox(key="rp_view").value == folder.name
    assert again.dataframe[1].value.equals(at.dataframe[1].value)
    assert len(study_charts(again)) == 2


@pytest.mark.slow
def test_cancel_stops_the_study_and_says_so(results):
    at = open_page()
    at.multiselect(key="rp_pairs_paper").set_value([("tanh", "sgd")])  # batch 1: slow
    at.number_input(key="rp_epochs").set_value(50)
    at.run()
    at.button[0].click()
    at.run()
    at.button(key="rp_cancel").click()
    at.run()
    wait_for_study(at)
    assert "Cancelled after 0 of 1 pairs" in at.warning[0].value
    assert at.info[0].value == "No finished pair to show."
    assert jobs.list_jobs(studies.STUDY)[0].status == "cancelled"


@pytest.mark.slow
def test_work_past_the_cap_is_refused_with_the_estimate(results, monkeypatch):
    monkeypatch.setenv(studies.STUDY.cap_env, "10000")
    at = open_page()
    assert "2,400,000 optimizer steps (cap 10,000)" in at.error[0].value
    assert at.button[0].disabled
    at.number_input(key="rp_runs").set_value(1)
    at.number_input(key="rp_epochs").set_value(1)
    at.multiselect(key="rp_pairs_paper").set_value([ADAM_RELU])
    at.run()
    assert not at.error and not at.button[0].disabled


@pytest.mark.slow
def test_settings_can_come_from_a_saved_sweep(results):
    folder = helpers.tiny_saved_sweep()
    chosen = reproduce.configs_from_sweep(folder)[("tanh", "sgd")]

    at = open_page()
    at.selectbox(key="rp_source").set_value(folder.name)
    at.run()
    assert at.multiselect(key=f"rp_pairs_{folder.name}").value == [("tanh", "sgd")]
    row = at.dataframe[0].value.iloc[0]
    assert (row["pair"], row["learning rate"], row["batch size"]) == (
        "SGD + Tanh", f"{chosen['lr']:g}", "50")
    assert "1 pair × 10 runs × 100 epochs = 20,000 optimizer steps" in " ".join(
        c.value for c in at.caption)


@pytest.mark.slow
def test_diverged_runs_are_flagged_without_breaking_the_page(results):
    spec = studies.StudySpec({("relu", "sgd"): {"lr": 50.0, "batch_size": 50},
                              RMSPROP_TANH: reproduce.PAPER_CONFIGS[RMSPROP_TANH]},
                             runs=2, epochs=2)
    folder = jobs.create(studies.STUDY, spec)
    assert runner.Runner(studies.STUDY, folder).run().status == "finished"
    at = open_page()
    assert "2 runs diverged" in at.warning[0].value
    table = at.dataframe[1].value.set_index("pair")
    assert table.loc["SGD + ReLU"].tolist()[:3] == ["—", "—", "—"]
    assert table.loc["SGD + ReLU", "diverged runs"] == "2 of 2"
    assert len(study_charts(at)) == 2


class CancelInSecondPair(runner.Runner):
    """Cancels once the first pair (200 optimizer steps) is done and the second has begun."""

    def _report(self, done: int, total: int) -> bool:
        if done > 200:  # 2 runs × 2 epochs × 50 steps (1000 points, batch 20)
            self.cancel()  # before reporting, so that this very report says stop
        return super()._report(done, total)


@pytest.mark.slow
def test_a_cancelled_study_shows_its_finished_pairs_and_resumes_the_others(results):
    spec = studies.StudySpec({p: reproduce.PAPER_CONFIGS[p] for p in (ADAM_RELU, RMSPROP_TANH)},
                             runs=2, epochs=2)
    folder = jobs.create(studies.STUDY, spec)
    assert CancelInSecondPair(studies.STUDY, folder).run().status == "cancelled"

    at = open_page()
    assert "Cancelled after 1 of 2 pairs" in at.warning[0].value
    assert at.dataframe[1].value["pair"].tolist() == ["Adam + ReLU"]
    at.button(key="rp_resume").click()
    at.run()
    wait_for_study(at)
    assert not [b for b in at.button if b.key == "rp_resume"]
    assert at.dataframe[1].value["pair"].tolist() == ["Adam + ReLU", "RMSProp + Tanh"]
    assert jobs.list_jobs(studies.STUDY)[0].status == "finished"
    # resuming trains only the missing pair: the numbers are those of one uninterrupted call
    expected = reproduce.run_study(spec.configs, runs=2, epochs=2).summary
    pd.testing.assert_frame_equal(studies.load(folder, spec).summary, expected,
                                  check_dtype=False)


@pytest.mark.slow
def test_the_ablation_section_shows_a_saved_ablation_and_runs_one(results, monkeypatch):
    from minidl.experiments import ablation

    spec = ablation.AblationSpec(knobs=({}, {"targets": "signed"}), runs=1, budgets=(1, 2),
                                 long_epochs=2, pairs=(ADAM_RELU,))
    folder = jobs.create(ablation.ABLATION, spec)
    assert runner.Runner(ablation.ABLATION, folder).run().status == "finished"
    at = open_page()
    at.selectbox(key="rp_ablation").set_value(folder.name).run()
    [table] = [d.value for d in at.dataframe if "convention" in d.value.columns]
    assert table["convention"].tolist() == ["as we read it", "targets: ±1", "best combination"]
    assert list(table.columns)[1] == "Adam + ReLU" and "pairs ≥ 96.9 %" in table.columns
    assert "Table I under each convention, 2 epochs" in [chart_title(c) for c in charts(at)]
    at.segmented_control(key="rp_ablation_budget").set_value(1).run()
    assert "Table I under each convention, 1 epochs" in [chart_title(c) for c in charts(at)]
    assert any("Best combination" in c.value for c in at.caption)

    # the launcher refuses work over the cap, and runs what fits
    monkeypatch.setenv(ablation.ABLATION.cap_env, "1000")
    at.run()
    assert at.button(key="rp_ablation_launch").disabled
    assert not at.exception



@pytest.mark.slow
def test_a_failed_studys_error_from_its_meta_file_is_plain_text(results):
    crafted = "`](https://evil.example) ## Owned"
    folder = jobs.create(studies.STUDY, studies.StudySpec({ADAM_RELU: reproduce.PAPER_CONFIGS[
        ADAM_RELU]}, runs=1, epochs=1))
    helpers.set_job(folder, status="failed", error=crafted)
    at = open_page()
    rendered = [e.value for kind in ("markdown", "warning", "info", "error", "caption")
                for e in getattr(at, kind)]
    assert not any("evil" in text for text in rendered)
    assert any(c.value == crafted for c in at.code)


@pytest.mark.slow
def test_a_study_another_process_trains_is_shown_running_without_controls(results):
    folder = jobs.create(studies.STUDY, studies.paper_spec(runs=1, epochs=1))
    with jobs.lock(folder):  # as `minidl reproduce --out FOLDER` holds it while it trains
        helpers.set_job(folder, status="running")
        at = open_page()
        assert any("Trained by another process" in c.value for c in at.caption)
        assert at.get("progress")
        assert not [b for b in at.button if b.key in ("rp_resume", "rp_cancel")]
    at.run()
    assert any("process training this study stopped" in w.value for w in at.warning)
    assert at.button(key="rp_resume")
