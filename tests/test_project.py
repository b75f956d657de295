"""The project's own promises: the README's commands are what CI runs, pins agree."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_readme_test_command():
    test_command = [c for c in readme_commands() if "pytest" in c]
    assert len(test_command) == 1
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == test_command[0]


def test_requirements_pin_every_runtime_package():
    pins = dict(re.findall(r"^([a-z]+)==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M))
    assert set(pins) == {"torch", "streamlit", "altair", "pandas"}
    assert pins["torch"] == "2.13.0"


def test_code_is_ruff_clean():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
