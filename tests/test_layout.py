"""The shape of the package: small functions, thin experiments, lazy heavy imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nrmkit"
#: the longest function body, docstring excluded.
MAX_FUNCTION_LINES = 60
#: the longest module of the experiments layer.
MAX_EXPERIMENT_MODULE_LINES = 400


def _function_lengths(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                length -= first.end_lineno - first.lineno + 1
            yield node.name, node.lineno, length


def test_no_function_is_longer_than_sixty_lines():
    long = [f"{path.relative_to(PACKAGE)}:{line} {name} ({length} lines)"
            for path in sorted(PACKAGE.rglob("*.py"))
            for name, line, length in _function_lengths(path) if length > MAX_FUNCTION_LINES]
    assert not long, long


def test_experiment_modules_are_thin():
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
            for path in sorted((PACKAGE / "experiments").rglob("*.py"))}
    assert all(lines <= MAX_EXPERIMENT_MODULE_LINES for lines in long.values()), {
        name: lines for name, lines in long.items() if lines > MAX_EXPERIMENT_MODULE_LINES}


def test_experiments_and_lower_layers_never_import_click():
    """Options live in nrmkit.cli only (the import contract forbids upward imports; this
    forbids click itself below the command line)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "click" or name.startswith("click.") for name in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders, offenders


def test_every_layer_imports_without_torch_or_matplotlib_until_used():
    """The registries, the run layer and the configurations load without torch, so that
    `--help`, validation and memory estimates are instant."""
    code = ("import sys\n"
            "import nrmkit.core.registry, nrmkit.runs.harness, nrmkit.runs.sweep, "
            "nrmkit.cli.main, nrmkit.plotting\n"
            "from nrmkit.core.registry import WORKFLOW_TABLE\n"
            "import importlib\n"
            "for name, family, cls, _ in WORKFLOW_TABLE:\n"
            "    importlib.import_module(f'nrmkit.experiments.{family}.{name}')\n"
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
