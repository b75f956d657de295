"""minidl.export: a run as JSON (and back), and as a script that retrains it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl import Config, Run, data
from minidl.engine import export

ROOT = Path(__file__).resolve().parent.parent


def small(**changes) -> Config:
    return Config(**{"n_train": 60, "n_test": 40, "hidden": (5, 3), "batch_size": 10,
                     "epochs": 3, **changes})


def own_points(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    return data.spiral(n, seed=3)


@pytest.fixture(scope="module")
def trained() -> Run:
    return Run(small(features=("x1", "x2sq", "sinx1"), optimizer="adam", lr=0.01,
                     l1=1e-3)).fit()


def test_json_round_trips_settings_weights_and_history_exactly(trained):
    text = export.to_json(trained)
    doc = json.loads(text)
    assert doc["format"] == export.FORMAT and doc["version"] == export.VERSION
    assert doc["features"] == ["x1", "x2sq", "sinx1"] and doc["settings"]["hidden"] == [5, 3]
    back = export.from_json(text)
    assert back.config == trained.config and back.epoch == trained.epoch == 3
    assert back.history == trained.history
    for (a, _), (b, _) in zip(back.model.param(), trained.model.param()):
        assert torch.equal(a, b)
    assert back.metrics() == trained.metrics()  # same data, same weights
    assert export.to_json(back) == text


def test_an_imported_run_trains_on(trained):
    back = export.from_json(export.to_json(trained))
    back.fit(epochs=2)
    assert back.epoch == 5 and [h["epoch"] for h in back.history] == [1, 2, 3, 4, 5]


def test_a_run_on_own_points_exports_them_and_the_import_restores_them():
    X, y = own_points()
    run = Run(small(dataset="custom", split=0.75, features=("x1", "x2", "x1x2")),
              points=(X, y)).fit()
    doc = json.loads(export.to_json(run))
    assert len(doc["points"]["label"]) == 40
    back = export.from_json(json.dumps(doc))
    assert torch.equal(back.X_train, run.X_train) and torch.equal(back.y_test, run.y_test)
    assert back.metrics() == run.metrics()


@pytest.mark.slow
def test_the_script_retrains_to_the_same_final_metrics(tmp_path):
    for config, points in [(small(features=("x1", "x2", "sinx2"), l1=1e-3, momentum=0.5), None),
                           (small(dataset="custom", split=0.6, epochs=2), own_points())]:
        run = Run(config, points=points).fit()
        script = tmp_path / "retrain.py"
        script.write_text(export.to_script(run), encoding="utf-8")
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""},
                             timeout=120, check=True).stdout
        final = json.loads(out.strip().splitlines()[-1].removeprefix("final "))
        assert final == run.history[-1]


@pytest.mark.slow
def test_the_script_says_how_to_get_minidl_where_it_is_not_installed(tmp_path):
    """Run outside the clone (``-I``: neither the working folder nor PYTHONPATH on the path):
    one line that says what to install, not a traceback."""
    isolated = [sys.executable, "-I"]
    if subprocess.run([*isolated, "-c", "import minidl"], cwd=tmp_path,
                      capture_output=True).returncode == 0:
        pytest.skip("minidl is installed in this Python")
    script = tmp_path / "minidl_model.py"
    script.write_text(export.to_script(Run(small())), encoding="utf-8")
    out = subprocess.run([*isolated, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "needs the minidl package" in out.stderr and "pip install" in out.stderr


def test_no_pickle_anywhere():
    source = (ROOT / "minidl" / "engine" / "export.py").read_text()
    assert "pickle" not in source.replace("no pickle", "") and "torch.save" not in source


def valid_doc(run: Run) -> dict:
    return json.loads(export.to_json(run))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
    (lambda d: d["settings"].update(colour="red"), "unknown setting 'colour'"),
    (lambda d: d["settings"].update(lr=-1), "Invalid learning rate"),
    (lambda d: d["settings"].update(features=["x1", "x1"]), "input features"),
    (lambda d: d["layers"].pop(), "must have 3 layers"),
    (lambda d: d["layers"][0]["weight"][0].pop(), "layer 1 weight"),
    (lambda d: d["layers"][1]["bias"].__setitem__(0, None), "finite numbers"),
    (lambda d: d["layers"][1]["bias"].__setitem__(0, "1"), "finite numbers"),
    (lambda d: d["layers"][2]["weight"].__setitem__(0, 3), "layer 3 weight"),
    (lambda d: d["history"][0].update(epoch=7), "epoch is not 1"),
    (lambda d: d["history"][1].pop("test_acc"), "history entry 2"),
    (lambda d: d.update(epoch=9), "not at 9"),
    (lambda d: d.update(points={"x1": [0.5], "x2": [0.5], "label": [1]}), "not 'custom'"),
    (lambda d: d.pop("settings"), "no settings"),
])
def test_a_damaged_file_gets_a_clear_message(trained, change, message):
    doc = valid_doc(trained)
    change(doc)
    with pytest.raises(export.ModelFileError, match=message):
        export.from_json(json.dumps(doc))


def test_nan_weights_too_large_files_and_non_json_are_refused(trained):
    text = export.to_json(trained)
    for bad, message in [(text.replace("[[", "[[NaN, ", 1), "not JSON"),
                         (" " * (export.MAX_BYTES + 1), "more than"),
                         (b"\xff\xfe\x00", "not JSON"), ("[" * 100_000, "not JSON"),
                         ("[1, 2]", "JSON object"), (text[:-10], "not JSON"), (None, "text")]:
        with pytest.raises(export.ModelFileError, match=message):
            export.from_json(bad)
    assert issubclass(export.ModelFileError, ValueError)


def test_a_diverged_run_exports_but_does_not_import():
    run = Run(small(lr=1.0, gain=30.0, epochs=20, optimizer="sgd", batch_size=1)).fit()
    assert run.diverged
    with pytest.raises(export.ModelFileError):
        export.from_json(export.to_json(run))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_files_raise_only_the_clear_error(trained, draw):
    """Random JSON, random text, and a real file with one value replaced by random JSON:
    from_json returns a Run or raises ModelFileError, nothing else."""
    doc = valid_doc(trained)
    kind = draw.draw(st.sampled_from(["json", "text", "mutate"]))
    if kind == "json":
        text = json.dumps(draw.draw(JSON))
    elif kind == "text":
        text = draw.draw(st.text(max_size=200))
    else:
        node = doc  # walk down a few levels, then replace one value there
        for _ in range(draw.draw(st.integers(1, 4))):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw.draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw.draw(st.booleans()):
                node = child
                continue
            node[key] = draw.draw(JSON)
            break
        text = json.dumps(doc)
    try:
        export.from_json(text)
    except export.ModelFileError as error:
        assert str(error)


@pytest.mark.parametrize("setting, value, name", [("n_train", 100_000, "training points"),
                                                  ("hidden", [4096], "hidden layer widths"),
                                                  ("epochs", 100_000, "epoch budget")])
def test_the_playground_refuses_files_beyond_its_widgets(trained, setting, value, name):
    """A file may ask for any valid run; the Playground takes only what its widgets offer,
    so an upload cannot make a shared server draw 100,000 points or a 4096-unit layer."""
    doc = json.loads(export.to_json(trained))
    doc["settings"][setting] = value
    if setting == "hidden":
        doc["layers"] = [{"weight": [[0.0] * 3] * 4096, "bias": [0.0] * 4096},
                         {"weight": [[0.0] * 4096] * 2, "bias": [0.0, 0.0]}]
    text = json.dumps(doc)
    with pytest.raises(export.ModelFileError, match=f"its {name} .*outside what the Playground"):
        export.from_json(text, app_ranges=True)
    if setting != "n_train":
        export.from_json(text)  # the library itself reads it
