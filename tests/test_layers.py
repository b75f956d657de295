"""The package's layering: each module imports only modules below it; presentation stays apart."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# bottom to top: a module may import only modules listed before it
LAYERS = [
    "minidl.limits", "minidl.hparams", "minidl.nn", "minidl.optim", "minidl.data", "minidl.health",
    "minidl.train", "minidl.export",
    "minidl.population", "minidl.tasks", "minidl.cv", "minidl.jobs", "minidl.runner", "minidl.sweeps",
    "minidl.reproduce", "minidl.studies", "minidl.ablation", "minidl.race",
    "minidl.viz.boundary", "minidl.viz.tiles", "minidl.viz.tables", "minidl.viz.live",
    "minidl.viz.race", "minidl.viz.cv",
    "minidl.viz.study", "minidl.viz.ablation", "minidl.viz.network", "minidl.viz.health",
    "minidl.__main__",
    "ui.background", "ui.playground", "ui.links", "ui.compare", "ui.jobs", "ui.training",
]
PACKAGES = ("minidl", "minidl.viz", "ui")


def module_file(name: str) -> Path:
    return ROOT / (name.replace(".", "/") + ".py")


def imported(name: str) -> set[str]:
    """The project modules ``name`` imports (relative and absolute, at any depth of its code)."""
    package = name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(module_file(name).read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in LAYERS else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in LAYERS}


def test_every_module_is_placed_in_a_layer():
    on_disk = {".".join(p.relative_to(ROOT).with_suffix("").parts)
               for d in ("minidl", "ui") for p in (ROOT / d).rglob("*.py")}
    assert on_disk - set(PACKAGES) - {f"{p}.__init__" for p in PACKAGES} == set(LAYERS)


@pytest.mark.parametrize("name", LAYERS)
def test_a_module_imports_only_modules_below_it(name):
    above = [m for m in imported(name) if LAYERS.index(m) >= LAYERS.index(name)]
    assert above == [], f"{name} imports {above}, which are not below it"


def test_the_framework_and_engine_import_neither_streamlit_nor_altair():
    """With both made unimportable, every module outside minidl.viz still imports, and the
    CLI trains (only its figures need Altair)."""
    core = [m for m in LAYERS if m.startswith("minidl.") and ".viz." not in m]
    code = ("import sys; sys.modules['streamlit'] = None; sys.modules['altair'] = None; "
            + "; ".join(f"import {m}" for m in core if m != "minidl.__main__")
            + "; from minidl.__main__ import main; sys.exit(main(['train', '--epochs', '1', "
              "'--n-train', '20', '--n-test', '20']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


PAGES = ["streamlit_app", *(f"pages.{p.stem}" for p in sorted((ROOT / "pages").glob("*.py")))]


@pytest.mark.parametrize("name", LAYERS + PAGES)
def test_a_long_module_says_why_in_its_docstring(name):
    source = module_file(name).read_text()
    if len(source.splitlines()) > 320:
        docstring = ast.get_docstring(ast.parse(source)) or ""
        assert "Why this module is long" in docstring, f"{name} is long without a reason"
