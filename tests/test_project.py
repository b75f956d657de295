"""The project's own promises: the README's commands are what CI runs, pins agree."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_readme_full_test_command():
    """The README gives two test commands, the fast one and ``--all`` (installed with bytecode
    compiled); CI runs the second."""
    fast, full = [c for c in readme_commands() if "pytest" in c]
    assert fast.endswith("python -m pytest") and " --no-compile " in fast
    assert full == fast.replace(" --no-compile ", " ") + " --all"
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == full


def test_requirements_pin_every_runtime_package():
    pins = dict(re.findall(r"^([a-z]+)==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M))
    assert set(pins) == {"torch", "streamlit", "altair", "pandas", "sqlalchemy", "tqdm", "pillow"}
    assert pins["torch"] == "2.13.0"


def test_code_is_ruff_clean():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def tracked_files() -> set[str]:
    import subprocess
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return set(filter(None, out.stdout.split("\0")))


def readme_link_targets() -> list[str]:
    """Targets of the README's ``[text](target)`` links and ``![alt](target)`` images."""
    text = re.sub(r"```.*?```", "", (ROOT / "README.md").read_text(), flags=re.S)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    links = re.findall(r"!?\[[^\]]*\]\(\s*(?:<([^>]+)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)", text)
    return [bracketed or plain for bracketed, plain in links]


def test_readme_links_and_images_are_tracked_files():
    from urllib.parse import unquote
    tracked = tracked_files()
    local = [t for t in readme_link_targets() if not re.match(r"(https?:|mailto:|#)", t)]
    missing = [t for t in local if unquote(t.split("#")[0]).removeprefix("./") not in tracked]
    assert not missing, f"README links to files git does not track: {missing}"


def test_no_tracked_file_points_outside_the_repository():
    # notes that live outside the repository; spelled in pieces so this file does not match itself
    outside = ("DESIGN" + ".md", "STYLE" + ".md", ".." + "/shared")
    suffixes = (".py", ".md", ".toml", ".txt", ".sh")
    offenders = []
    for name in sorted(tracked_files()):
        path = ROOT / name
        if not (name.endswith(suffixes) or name == ".ci/run") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(word in line for word in outside):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
