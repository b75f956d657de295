"""The command line, ``minidl``: most of it called in this process (``main``), as the entry
point does; one run through ``python -m minidl`` checks the real thing."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# ---------------------------------------------------------------- the edges a newcomer meets

def test_version_answers_without_importing_torch():
    """``minidl --version`` (and ``--help``) load no torch: it took 3–8.6 s with it."""
    check = ("import sys\nfrom minidl.cli import main\nfor argv in (['--version'], ['--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'pandas', "
             "'sqlalchemy', 'streamlit'}))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("minidl ") and out.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("args, name, value", [
    (("train", "--activation", "Relu"), "activation", "relu"),
    (("train", "--optimizer", "ADAM"), "optimizer", "adam"),
    (("sweep", "--activations", "Relu", "TANH"), "activations", ["relu", "tanh"]),
    (("sweep", "--activations", "relu,Sigmoid"), "activations", ["relu", "sigmoid"]),
    (("sweep", "--optimizers", "RMSprop"), "optimizers", ["rmsprop"]),
    (("reproduce", "--settings", "Paper"), "settings", "paper"),
    (("Train", "--dataset", "Spiral"), "dataset", "spiral"),
])
def test_every_choice_is_read_case_insensitively_on_every_command(args, name, value):
    from minidl.cli import parse
    assert getattr(parse(list(args)), name) == value


@pytest.mark.parametrize("args, flag", [
    (("train", "--hidden", "25,,25"), "--hidden"),
    (("train", "--hidden", "25,25,"), "--hidden"),
    (("train", "--features", "x1,,x2"), "--features"),
    (("sweep", "--lr", "0.1,,1"), "--lr"),
    (("ablate", "--epochs", "100,,200"), "--epochs"),
])
def test_an_empty_list_item_is_an_error(run_cli, args, flag):
    out = run_cli(*args)
    assert out.returncode == 2
    assert f"argument {flag}" in out.stderr and "empty" in out.stderr


@pytest.mark.parametrize("args, usage, suggestion", [
    (("train", "--optimiser", "adam"), "usage: minidl train", "--optimizer"),
    (("sweep", "--optimisers", "adam"), "usage: minidl sweep", "--optimizers"),
    (("reproduce", "--runs", "2", "--setings", "paper"), "usage: minidl reproduce", "--settings"),
])
def test_a_misspelled_flag_gets_its_commands_usage_and_a_suggestion(run_cli, args, usage,
                                                                    suggestion):
    out = run_cli(*args)
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and len(lines) == 2
    assert lines[0].startswith(usage) and f"did you mean {suggestion}?" in lines[1]


def test_a_misspelled_command_suggests_one_and_hides_internal_commands(run_cli):
    out = run_cli("swep")
    lines = out.stderr.splitlines()
    assert out.returncode == 2 and len(lines) == 2
    assert "'swep'" in lines[1] and "did you mean sweep?" in lines[1]
    assert "run-job" not in out.stderr
    assert "run-job" not in run_cli("--help").stdout


@pytest.mark.parametrize("args, flag, value", [
    (("train", "--lr", "-1"), "--lr", "-1"),
    (("train", "--lr", "fast"), "--lr", "fast"),
    (("train", "--activation", "gelu"), "--activation", "gelu"),
    (("sweep", "--folds", "x"), "--folds", "x"),
    (("sweep", "--optimizers", "foo"), "--optimizers", "foo"),
    (("ablate", "--runs", "0"), "--runs", "0"),
])
def test_a_bad_value_is_one_line_and_the_commands_usage_hint(run_cli, args, flag, value):
    out = run_cli(*args)
    usage, error = out.stderr.splitlines()  # not the whole usage: ~16 lines of it for train
    assert out.returncode == 2 and usage.startswith(f"usage: minidl {args[0]} ")
    assert "--help" in usage
    assert f"argument {flag}" in error and value in error and "expected" in error


def test_reproduce_suggests_paper_for_a_misspelling(run_cli):
    out = run_cli("reproduce", "--settings", "papr")
    assert out.returncode == 2 and "did you mean paper?" in out.stderr


def _quick_sweep(run_cli, folder, *more):
    return run_cli("sweep", "--activations", "tanh", "--optimizers", "sgd", "--folds", "2",
                   "--epochs", "1", "--grid", "batch_size=100", "--grid", "lr=0.1", "--out",
                   str(folder), *more)


def test_reproduce_into_a_sweep_folder_says_it_is_a_sweep(run_cli, tmp_path):
    assert _quick_sweep(run_cli, tmp_path).returncode == 0
    out = run_cli("reproduce", "--runs", "1", "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 2 and "damaged" not in out.stderr
    assert f"{tmp_path} holds a sweep" in out.stderr


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody here can write in (root ignores permissions: a read-only file system)."""
    if os.geteuid() != 0:
        tmp_path.chmod(0o555)
        yield tmp_path
        tmp_path.chmod(0o755)
    elif os.access("/sys/kernel", os.F_OK) and not _writable(Path("/sys/kernel")):
        yield Path("/sys/kernel")
    else:
        pytest.skip("no read-only folder found")


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def test_an_out_that_cannot_be_written_is_named_before_any_training(run_cli, read_only_folder):
    out = _quick_sweep(run_cli, read_only_folder)
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    assert str(read_only_folder) in out.stderr and ".tmp" not in out.stderr
    assert "cross-validating" not in out.stderr  # refused before it trained


def test_the_optimal_table_fits_100_columns_unless_wide(run_cli, tmp_path):
    args = ("--activations", "tanh", "relu", "--optimizers", "sgd", "adam", "rmsprop")
    out = _quick_sweep(run_cli, tmp_path, *args)
    assert out.returncode == 0, out.stderr
    table = out.stdout.splitlines()[1:]  # below the line naming the folder
    assert max(map(len, table)) <= 100 and "rmsprop accuracy" in out.stdout
    wide = _quick_sweep(run_cli, tmp_path, *args, "--wide").stdout.splitlines()[1:]
    assert max(map(len, wide)) > 100 and len(wide) < len(table)


def test_progress_stays_quiet_when_not_a_terminal(run_cli, tmp_path):
    out = _quick_sweep(run_cli, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr and "cross-validating" not in out.stderr


def test_app_starts_streamlit_on_the_app_with_streamlits_own_options(run_cli, monkeypatch):
    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    run_cli("app", "--server.port", "8502", "--server.headless", "true")
    (argv,) = started
    assert argv[1:4] == ["-m", "streamlit", "run"] and Path(argv[4]).name == "streamlit_app.py"
    assert (Path(argv[4]).parent / "pages" / "playground.py").is_file()
    assert argv[-4:] == ["--server.port", "8502", "--server.headless", "true"]
    assert "--runner.postScriptGC=false" in argv  # the app's .streamlit/config.toml, wherever


def test_train_takes_point_jitter_from_the_table_and_refuses_too_much(run_cli):
    out = run_cli("train", "--n-train", "50", "--n-test", "50", "--epochs", "1",
                  "--jitter", "0.1")
    assert out.returncode == 0, out.stderr
    out = run_cli("train", "--jitter", "0.7")
    assert out.returncode == 2 and "point jitter" in out.stderr and "0.7" in out.stderr
