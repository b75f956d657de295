"""The package's architecture is its folders: each imports only from those below it, and
the framework a learner reads stays apart from everything else."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# bottom to top; a module's layer is its folder ("minidl": the framework, the modules directly
# in minidl/ but the command line), and it may import only from its own layer and those below
LAYERS = ["minidl", "minidl.engine", "minidl.jobs", "minidl.experiments", "minidl.viz",
          "minidl.cli", "ui"]
FRAMEWORK = ["minidl.config", "minidl.data", "minidl.files", "minidl.health", "minidl.hparams",
             "minidl.nn", "minidl.optim", "minidl.runtime", "minidl.text"]


def modules() -> list[str]:
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for d in ("minidl", "ui") for p in (ROOT / d).rglob("*.py"))


def layer(module: str) -> str:
    if module in ("minidl.cli", "minidl.__main__"):
        return "minidl.cli"
    return max((name for name in LAYERS if module == name or module.startswith(name + ".")),
               key=len)


def module_file(name: str) -> Path:
    path = ROOT / name.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported(name: str) -> set[str]:
    """The project modules ``name`` imports (relative and absolute, at any depth of its code)."""
    known = set(modules())
    package = name if module_file(name).name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(module_file(name).read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def test_the_folders_are_the_layers_and_the_framework_is_the_top_level_modules():
    assert {layer(m) for m in modules()} == set(LAYERS)
    assert [m for m in modules() if layer(m) == "minidl" and m != "minidl"] == FRAMEWORK


@pytest.mark.parametrize("name", [m for m in modules() if m != "minidl"])
def test_a_module_imports_only_from_its_layer_and_below(name):
    """(``minidl`` itself is the package's front door: it names the public API, loaded
    when first used.)"""
    above = [m for m in imported(name) if LAYERS.index(layer(m)) > LAYERS.index(layer(name))]
    assert above == [], f"{name} imports {above}, which are above its layer"


def test_no_two_modules_import_each_other_in_a_circle():
    graph = {m: {i for i in imported(m) if i != "minidl"} for m in modules()}
    seen, path = set(), []

    def visit(m: str) -> None:
        if m in path:
            raise AssertionError(" -> ".join(path[path.index(m):] + [m]))
        if m in seen:
            return
        path.append(m)
        for n in graph[m]:
            visit(n)
        path.pop()
        seen.add(m)
    for m in graph:
        visit(m)


def test_the_framework_imports_nothing_but_the_framework_and_torch():
    for name in FRAMEWORK:
        assert imported(name) <= set(FRAMEWORK), name
    # and nn.py is the plain maths: one network, no batched matmuls (those are the engine's)
    source = (ROOT / "minidl" / "nn.py").read_text()
    assert "bmm" not in source and "members" not in source


@pytest.mark.slow
def test_the_framework_and_engine_import_neither_streamlit_nor_altair():
    """With both made unimportable, every module outside minidl.viz still imports, and the
    CLI trains (only its figures need Altair)."""
    core = [m for m in modules() if m.startswith("minidl") and layer(m) != "minidl.viz"
            and m != "minidl.__main__"]
    code = ("import sys; sys.modules['streamlit'] = None; sys.modules['altair'] = None; "
            + "; ".join(f"import {m}" for m in core)
            + "; from minidl.cli import main; sys.exit(main(['train', '--epochs', '1', "
              "'--n-train', '20', '--n-test', '20']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


PAGES = ["streamlit_app", *(f"pages.{p.stem}" for p in sorted((ROOT / "pages").glob("*.py")))]


def test_one_helper_cuts_long_text():
    """Quoted values are cut by ``minidl.text.cut`` alone: no module slices and appends "…"."""
    import re
    sliced = re.compile(r"\[:[^\]]*\] \+ \"…\"")
    found = [f"{p.relative_to(ROOT)}:{n}" for d in ("minidl", "ui", "pages")
             for p in (ROOT / d).rglob("*.py") if p.name != "text.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if sliced.search(line)]
    assert found == []


@pytest.mark.parametrize("name", modules() + PAGES)
def test_a_long_module_says_why_in_its_docstring(name):
    source = module_file(name).read_text()
    if len(source.splitlines()) > 320:
        docstring = ast.get_docstring(ast.parse(source)) or ""
        assert "Why this module is long" in docstring, f"{name} is long without a reason"


def test_process_wide_settings_are_set_at_entry_points_only():
    """Threads and the allocator are the process's: ``minidl.runtime.setup`` sets them, called
    by the entry points (the command line, a job's Dask task, the app, its training
    processes) — never as a side effect of a library call."""
    import re
    setting = re.compile(r"set_num_threads\(|mallopt\(|runtime\.setup\(\)")
    callers = {p.relative_to(ROOT).as_posix() for d in ("minidl", "ui")
               for p in (ROOT / d).rglob("*.py") if setting.search(p.read_text())}
    assert callers == {"minidl/runtime.py", "minidl/cli.py", "minidl/jobs/tasks.py",
                       "minidl/engine/export.py", "ui/background.py"}
    assert "runtime.setup()" in (ROOT / "streamlit_app.py").read_text()
    tasks = (ROOT / "minidl" / "jobs" / "tasks.py").read_text()
    assert "if entry:\n        runtime.setup()" in tasks  # only as a Dask worker's entry point
