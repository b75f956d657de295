"""The package route: the README's install resolves to the CPU build, and the wheel, installed in a
fresh venv, carries the app, and its ``minidl app`` and ``minidl train`` work outside the checkout."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT, _free_port, _stop, _wait_healthy

INSTALL_SECONDS = 300  # retrying an unreachable index took 10 min


def test_torch_is_bounded_to_the_release_that_installs_as_a_cpu_wheel():
    from packaging.requirements import Requirement
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = next(Requirement(r) for r in project["dependencies"] if r.startswith("torch"))
    assert "2.13.0" in torch.specifier and "2.14.1" not in torch.specifier


def test_the_readme_package_route_never_retries_and_names_the_cpu_index():
    route = [c for c in re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())
             if "pip install" in c and "[app]" in c]
    assert route, "the README gives no package route"
    for command in route:
        assert "--retries 0" in command and "download.pytorch.org/whl/cpu" in command


@pytest.mark.slow
def test_the_wheel_installs_cpu_only_and_runs_the_app_and_train_outside_the_checkout(tmp_path):
    """The README's route resolves to the CPU build, and the wheel runs from anywhere.

    The route is resolved, not installed (``--dry-run``): unpacking torch into a fresh venv
    took ~100 s of CI's 15 minutes.  The wheel itself is installed without dependencies
    into a fresh venv that borrows this one's packages (a ``.pth`` line: their own ``.pth``
    files, such as an editable checkout, are not read), so what runs is the wheel's code."""
    import json
    import sysconfig

    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--retries", "0", "-q", "-w", str(wheels), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = wheels.glob("minidl-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=300)
    report = tmp_path / "report.json"
    resolve = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run",
                              "--ignore-installed", "-q", "--retries", "0", "--report",
                              str(report), "--extra-index-url",
                              "https://download.pytorch.org/whl/cpu", f"{wheel}[app]"],
                             capture_output=True, text=True, timeout=INSTALL_SECONDS)
    assert resolve.returncode == 0, resolve.stderr[-3000:]
    packages = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    assert packages["torch"] == "2.13.0+cpu", packages.get("torch")
    assert not [name for name in packages if "nvidia" in name or "cuda" in name], packages
    assert {"streamlit", "altair", "pandas", "sqlalchemy"} <= packages.keys()

    site = next(venv.glob("lib/python*/site-packages"))
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"),
                              "install", "-q", "--no-deps", "--retries", "0", str(wheel)],
                             capture_output=True, text=True, timeout=INSTALL_SECONDS)
    assert install.returncode == 0, install.stderr[-3000:]
    where = subprocess.run([venv / "bin" / "python", "-c", "import minidl; print(minidl.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site)), where  # the wheel's code, not the checkout's

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    minidl = str(venv / "bin" / "minidl")
    train = subprocess.run([minidl, "train", "--n-train", "100", "--n-test", "100", "--epochs",
                            "2", "--batch-size", "10"], cwd=outside, capture_output=True,
                           text=True, timeout=300)
    assert train.returncode == 0 and "final train error" in train.stdout, train.stderr

    port = _free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as out:
        app = subprocess.Popen([minidl, "app", "--server.port", str(port),
                                "--server.headless", "true"], cwd=outside, stdout=out,
                               stderr=subprocess.STDOUT)
    app.log_path = str(log)
    try:
        _wait_healthy(app, f"http://127.0.0.1:{port}")
    finally:
        _stop([app])
    assert Path(outside).is_dir() and not list(outside.iterdir())  # nothing written here
