import subprocess
import sys


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "minidl", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_train_prints_progress_and_final_errors():
    out = run_cli("train", "--n-train", "200", "--n-test", "200", "--epochs", "4", "--every", "2",
                  "--optimizer", "adam", "--lr", "0.01", "--batch-size", "10")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("epoch") for line in lines) == 2
    assert "final train error" in lines[-1] and "test error" in lines[-1]


def test_train_rejects_bad_settings_with_a_message():
    out = run_cli("train", "--lr", "-1")
    assert out.returncode == 2
    assert "learning rate" in out.stderr and "-1" in out.stderr


def test_train_reports_divergence():
    out = run_cli("train", "--n-train", "100", "--n-test", "100", "--epochs", "30",
                  "--lr", "1000000", "--activation", "relu")
    assert out.returncode == 1
    assert "diverged" in out.stdout


def test_sweep_writes_results_and_prints_table_one(tmp_path):
    out = run_cli("sweep", "--activations", "tanh", "--optimizers", "sgd", "rmsprop",
                  "--folds", "2", "--epochs", "1", "--grid", "batch_size=50",
                  "--grid", "lr=0.01,0.1", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "tanh-sgd.csv").exists() and (tmp_path / "tanh-rmsprop.csv").exists()
    assert (tmp_path / "optimal.csv").read_text().startswith("activation,sgd lr")
    assert "rmsprop accuracy" in out.stdout


def test_sweep_rejects_a_bad_grid_before_running(tmp_path):
    out = run_cli("sweep", "--grid", "lr=-1", "--out", str(tmp_path))
    assert out.returncode == 2 and "lr" in out.stderr
    assert not list(tmp_path.glob("*.csv"))
