"""The command line, ``minidl``: most of it called in this process (``main``), as the entry
point does; one run through ``python -m minidl`` checks the real thing."""

import json
import subprocess
import sys
import time

import pandas as pd
import pytest


@pytest.mark.slow
def test_python_dash_m_minidl_trains_and_prints_progress_and_final_errors():
    out = subprocess.run([sys.executable, "-m", "minidl", "train", "--n-train", "200",
                          "--n-test", "200", "--epochs", "4", "--every", "2", "--optimizer",
                          "adam", "--lr", "0.01", "--batch-size", "10"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("epoch") for line in lines) == 2
    assert "final train error" in lines[-1] and "test error" in lines[-1]


def test_train_rejects_bad_settings_with_a_message(run_cli):
    out = run_cli("train", "--lr", "-1")
    assert out.returncode == 2
    assert "learning rate" in out.stderr and "-1" in out.stderr


def test_train_reports_divergence(run_cli):
    out = run_cli("train", "--n-train", "100", "--n-test", "100", "--epochs", "30",
                  "--lr", "1000000", "--activation", "relu")
    assert out.returncode == 1
    assert "diverged" in out.stdout


def test_sweep_writes_results_and_prints_table_one(run_cli, tmp_path):
    out = run_cli("sweep", "--activations", "tanh", "--optimizers", "sgd", "rmsprop",
                  "--folds", "2", "--epochs", "1", "--grid", "batch_size=50",
                  "--grid", "lr=0.01,0.1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tanh-sgd.csv").exists() and (tmp_path / "tanh-rmsprop.csv").exists()
    assert (tmp_path / "optimal.csv").read_text().startswith("activation,sgd lr")
    assert "rmsprop accuracy" in out.stdout


def test_sweep_rejects_a_bad_grid_before_running(run_cli, tmp_path):
    out = run_cli("sweep", "--grid", "lr=-1", "--out", str(tmp_path))
    assert out.returncode == 2 and "lr" in out.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_sweep_is_a_saved_job_that_a_rerun_resumes(run_cli, tmp_path):
    args = ("sweep", "--activations", "tanh", "--optimizers", "adam", "--folds", "2",
            "--epochs", "1", "--lr", "0.01", "--batch-size", "100", "--beta1", "0.9",
            "--beta2", "0.999", "--eps", "1e-8", "--weight-decay", "0,0.001", "--out",
            str(tmp_path))
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    meta = json.loads((tmp_path / "sweep.json").read_text())
    assert meta["status"] == "finished"
    assert meta["grids"]["adam"]["weight_decay"] == [0.0, 0.001]
    rows = pd.read_csv(tmp_path / "tanh-adam.csv")
    assert sorted(rows["weight_decay"]) == [0.0, 0.001]
    again = run_cli(*args)
    assert again.returncode == 0 and len(pd.read_csv(tmp_path / "tanh-adam.csv")) == 2
    other = run_cli(*args[:-2], "--epochs", "2", "--out", str(tmp_path))
    assert other.returncode == 2 and "another sweep" in other.stderr


@pytest.mark.parametrize("args, flag", [
    (("train", "--weight-decay", "-1"), "--weight-decay"),
    (("train", "--batch-size", "0"), "--batch-size"),
    (("train", "--activation", "gelu"), "--activation"),
    (("train", "--every", "0"), "--every"),
    (("sweep", "--optimizers", "foo"), "--optimizers"),
    (("sweep", "--weight-decay", "0,-1"), "--weight-decay"),
    (("reproduce", "--seed", "-1"), "--seed"),
])
def test_a_bad_argument_is_a_one_line_error_naming_it(run_cli, args, flag):
    out = run_cli(*args, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"argument {flag}" in out.stderr.splitlines()[-1]


def test_version_and_help_name_every_command(run_cli):
    out = run_cli("--version", timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("minidl ")
    out = run_cli("--help", timeout=60)
    for command in ("train", "sweep", "reproduce"):
        assert command in out.stdout
    assert "``" not in out.stdout  # plain text, not reST


@pytest.mark.parametrize("args, flag", [
    (("train", "--n-train", "1000000000000"), "--n-train"),
    (("train", "--hidden", "25,1000000"), "--hidden"),
])
def test_huge_sizes_are_refused_before_anything_is_allocated(run_cli, args, flag):
    out = run_cli(*args, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"argument {flag}: Invalid" in out.stderr.splitlines()[-1]


@pytest.mark.parametrize("command", ["sweep", "reproduce", "ablate"])
def test_an_unwritable_out_is_found_before_any_training(run_cli, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    started = time.perf_counter()
    out = run_cli(command, "--out", str(blocker / "results"), timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr and time.perf_counter() - started < 30
