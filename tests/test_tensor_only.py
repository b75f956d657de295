"""minidl is written with tensor operations only: no autograd, no torch.nn / torch.optim."""

import ast
import pathlib
import subprocess
import sys

import pytest

import minidl

PACKAGE = pathlib.Path(minidl.__file__).parent
FORBIDDEN_MODULES = ("torch.nn", "torch.optim", "torch.autograd", "torch.func")


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_no_forbidden_imports_or_attributes():
    offences = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Attribute):
                names = [ast.unparse(node)]
            elif isinstance(node, (ast.Name, ast.keyword)):
                names = [getattr(node, "id", None) or getattr(node, "arg", None) or ""]
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES) or \
                        name.endswith("requires_grad") or name.endswith("requires_grad_"):
                    offences.append(f"{path.name}:{node.lineno}: {name}")
    assert not offences, offences
    assert len(_sources()) >= 5  # the scan really looked at the package


def test_no_forbidden_text_anywhere_in_the_package():
    for path in _sources():
        text = path.read_text()
        for needle in (*FORBIDDEN_MODULES, "requires_grad", "import streamlit"):
            assert needle not in text, f"{path.name} mentions {needle}"


@pytest.mark.slow
def test_training_works_with_autograd_disabled_globally_in_a_fresh_process():
    code = ("import torch; torch.set_grad_enabled(False);"
            "from minidl import Config, train;"
            "r = train(Config(n_train=100, n_test=100, epochs=2, batch_size=10));"
            "assert len(r.history) == 2 and not r.diverged;"
            "import sys; assert 'streamlit' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
