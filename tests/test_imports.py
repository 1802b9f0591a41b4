"""The import graph: data <- ingest <- dashboard <- app.py, and no edge loads what it does not need."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lower layers never import higher ones; an edge may import any layer below it.
LAYERS = {"data": 0, "ingest": 1, "dashboard": 2, "app": 3}
WEB = {"flask", "werkzeug", "dash", "dash_bootstrap_components", "dash_ag_grid", "plotly"}
SQL_OWNERS = {"data/store.py", "data/queries.py", "data/image_queries.py", "data/schema.py", "data/database.py"}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, at any depth (a lazy import is an edge too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: within the importing package
                found.append((node.lineno, package))
            elif node.module != "__future__":
                found.append((node.lineno, node.module))
    return found


def layer_of(path: Path) -> str:
    """The layer a file of the project belongs to (its top-level package, or app for app.py)."""
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def upward_imports(source: str, layer: str) -> list[str]:
    """Imports in a file of ``layer`` that reach a higher layer."""
    return [
        f"line {line}: {module}"
        for line, module in imported_modules(source, layer)
        if LAYERS.get(module.partition(".")[0], -1) > LAYERS[layer]
    ]


def project_files() -> list[Path]:
    files = [ROOT / "app.py"]
    for package in ("data", "ingest", "dashboard"):
        files += sorted((ROOT / package).rglob("*.py"))
    return files


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_imports_point_down_the_layers_only():
    problems = {
        _rel(path): found
        for path in project_files()
        if (found := upward_imports(path.read_text(encoding="utf-8"), layer_of(path)))
    }
    assert problems == {}


@pytest.mark.parametrize(
    "source, layer, upward",
    [
        ("from dashboard.factory import create_app", "ingest", True),
        ("def f():\n    import dashboard.settings", "data", True),
        ("import ingest.cli", "data", True),
        ("from app import server", "dashboard", True),
        ("from data.store import FeatureStore", "ingest", False),
        ("from ingest.http import ApiError", "dashboard", False),
        ("from . import validation", "ingest", False),
    ],
)
def test_upward_imports_finds_an_edge_going_up(source, layer, upward):
    """The check above is only as good as this: it sees top-level and lazy imports alike."""
    assert bool(upward_imports(source, layer)) is upward


def test_data_knows_nothing_of_the_web_and_only_the_store_speaks_sql():
    problems = []
    for path in project_files():
        name = _rel(path)
        for line, module in imported_modules(path.read_text(encoding="utf-8"), layer_of(path)):
            top = module.partition(".")[0]
            if name.startswith("data/") and top in WEB:
                problems.append(f"{name}:{line} imports {module}")
            if top == "sqlalchemy" and name not in SQL_OWNERS:
                problems.append(f"{name}:{line} imports {module}")
    assert problems == []


FIGURE_MODULES = ("figures", "figure_style", "scatter_figure")


@pytest.mark.parametrize("name", FIGURE_MODULES)
def test_figures_import_neither_dash_nor_flask_nor_the_store(name):
    modules = {m for _, m in imported_modules((ROOT / "dashboard" / f"{name}.py").read_text(), "dashboard")}
    own = {f"dashboard.{other}" for other in FIGURE_MODULES}
    assert not {m for m in modules if m.partition(".")[0] in WEB - {"plotly"}}
    assert not {m for m in modules if m.startswith(("data.store", "data.settings", "dashboard.")) and m not in own}


def _loaded_by(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}\nimport sys\nprint(' '.join(sorted({{m.partition('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_cli_loader_loads_no_web_framework():
    loaded = _loaded_by("import ingest.cli")
    assert "ingest" in loaded and "data" in loaded
    assert loaded & WEB == set()


def test_the_analysis_core_loads_neither_the_web_nor_sql():
    loaded = _loaded_by("import data.analysis, data.demo")
    assert loaded & (WEB | {"sqlalchemy"}) == set()
