"""The import graph: data <- ingest <- dashboard <- app.py, one way between dashboard's rooms, no circles,
no private names across modules, and no edge loads what it does not need."""

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
SQL_OWNERS = {"data/store.py", "data/queries.py", "data/image_queries.py", "data/token_queries.py"}
SQL_OWNERS |= {"data/metrics_queries.py", "data/metrics_windows.py", "data/schema.py", "data/database.py"}


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
            if top in ("sqlalchemy", "alembic") and name not in SQL_OWNERS and not name.startswith("data/migrations/"):
                problems.append(f"{name}:{line} imports {module}")
    assert problems == []


# The rooms of dashboard/, each a package: figures/ and api/ use no other room, page/ uses both;
# the modules at dashboard/'s top (the factory) put them together and no room imports them.
ROOMS = {"figures": set(), "api": set(), "page": {"figures", "api"}}


def module_name(path: Path) -> str:
    """The dotted name a project file is imported as (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for path in project_files()}


def _within(name: str, modules) -> str | None:
    """The longest project module that ``name`` is or lies in, if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_names(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, str | None]]:
    """(line, module, name) of every import at any depth; name is None for ``import module``.

    Relative imports are resolved against ``module``, so they are edges like any other.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = node.module or ""
            if node.level:
                target = f"{base}.{target}".strip(".")
            found += [(node.lineno, target, alias.name) for alias in node.names]
    return found


def import_edges(source: str, module: str, modules, is_package: bool = False) -> set[str]:
    """The project modules that ``module`` imports, at top level or inside functions alike.

    ``from package import name`` is an edge to ``package.name`` when that is a module, else to
    ``package`` (whose ``__init__`` runs); a submodule's implicit load of its parent is not an edge.
    """
    edges = set()
    for _, target, name in imported_names(source, module, is_package):
        if name is not None and f"{target}.{name}" in modules:
            edges.add(f"{target}.{name}")
        elif (found := _within(target, modules)) is not None:
            edges.add(found)
    edges.discard(module)
    return edges


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or through others (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _graph_of(sources: dict[str, str]) -> dict[str, set[str]]:
    return {name: import_edges(source, name, sources) for name, source in sources.items()}


def test_no_import_cycles_even_through_imports_inside_functions():
    modules = project_modules()
    graph = {
        name: import_edges(path.read_text(encoding="utf-8"), name, modules, path.name == "__init__.py")
        for name, path in modules.items()
    }
    assert import_cycles(graph) == []


@pytest.mark.parametrize(
    "sources, cycles",
    [
        ({"p.a": "import p.b", "p.b": "def f():\n    from p.a import x"}, [["p.a", "p.b"]]),
        ({"p.a": "from p import b", "p.b": "from p.c import y", "p.c": "from . import a"}, [["p.a", "p.b", "p.c"]]),
        ({"p.a": "import p.b", "p.b": "import os"}, []),
        ({"p": "from p.a import x", "p.a": "from p.b import y", "p.b": "import numpy"}, []),
    ],
)
def test_import_cycles_sees_lazy_and_relative_imports(sources, cycles):
    """The check above is only as good as this: a circle closed inside a function is a circle."""
    assert import_cycles(_graph_of(sources)) == cycles


def private_uses(source: str, module: str, modules, is_package: bool = False) -> list[str]:
    """Names with a leading underscore that ``module`` takes from another project module."""
    problems = []
    aliases = {}  # local name -> project module it is bound to
    for line, target, name in imported_names(source, module, is_package):
        if name is None:
            if _within(target, modules):
                aliases[target.partition(".")[0]] = target.partition(".")[0]
            continue
        if f"{target}.{name}" in modules:
            aliases[name] = f"{target}.{name}"
        elif _within(target, modules) and name.startswith("_") and not name.startswith("__"):
            problems.append(f"line {line}: {name} from {target}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.asname and alias.name in aliases:
                    aliases[alias.asname] = aliases.pop(alias.name)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            head = owner.partition(".")[0]
            if head in aliases and aliases[head] != module:
                problems.append(f"line {node.lineno}: {owner}.{node.attr}")
    return problems


def test_no_private_name_is_used_across_modules():
    modules = project_modules()
    problems = {
        name: found
        for name, path in modules.items()
        if (found := private_uses(path.read_text(encoding="utf-8"), name, modules, path.name == "__init__.py"))
    }
    assert problems == {}


@pytest.mark.parametrize(
    "source, found",
    [
        ("from p.b import _hidden", ["line 1: _hidden from p.b"]),
        ("def f():\n    from .b import _hidden, shown", ["line 2: _hidden from p.b"]),
        ("from p import b\nb._hidden()", ["line 2: b._hidden"]),
        ("import p.b\np.b._hidden", ["line 2: p.b._hidden"]),
        ("from p.b import shown, __version__\nimport os\nos._exit", []),
    ],
)
def test_private_uses_finds_a_private_name_taken_from_another_module(source, found):
    assert private_uses(source, "p.a", {"p", "p.a", "p.b"}) == found


def _room(name: str) -> str | None:
    parts = name.split(".")
    in_room = (parts[0] == "dashboard" and len(parts) > 2) or name in {f"dashboard.{r}" for r in ROOMS}
    return parts[1] if in_room else None


def test_dashboard_rooms_import_one_way():
    """figures/ and api/ stand alone, page/ draws on both, only the top of dashboard/ joins them."""
    modules = project_modules()
    assert set(ROOMS) == {p.name for p in (ROOT / "dashboard").iterdir() if (p / "__init__.py").exists()}
    problems = []
    for name, path in modules.items():
        if not name.startswith("dashboard."):
            continue
        room = _room(name)
        for target in import_edges(path.read_text(encoding="utf-8"), name, modules, path.name == "__init__.py"):
            if not target.startswith("dashboard.") or room is None:
                continue
            other = _room(target)
            if other != room and other not in ROOMS[room]:
                problems.append(f"{name} imports {target}")
    assert problems == []


def test_each_room_says_what_lives_there():
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((ROOT / "dashboard" / room / "__init__.py").read_text(encoding="utf-8")))
        assert doc, room


def test_figures_import_neither_dash_nor_flask_nor_the_store():
    modules = project_modules()
    for path in sorted((ROOT / "dashboard" / "figures").glob("*.py")):
        name = module_name(path)
        imported = {m for _, m in imported_modules(path.read_text(encoding="utf-8"), "dashboard")}
        assert not {m for m in imported if m.partition(".")[0] in WEB - {"plotly"}}, name
        edges = import_edges(path.read_text(encoding="utf-8"), name, modules, path.name == "__init__.py")
        assert {e for e in edges if not e.startswith("dashboard.figures")} <= {"data.analysis"}, name


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


# Constructors of containers, locks and caches: bound at module level, each is state that every app
# in the process shares (and that one app could resize or fill for another).
STATEFUL_CALLS = {"dict", "list", "set", "OrderedDict", "defaultdict", "deque", "Counter", "ByteLRU", "AnalysisCache"}
STATEFUL_CALLS |= {"WeakKeyDictionary", "WeakValueDictionary", "WeakSet", "Lock", "RLock", "Semaphore", "local"}
CACHING_DECORATORS = {"cache", "lru_cache"}


def _called_name(node) -> str | None:
    func = node.func if isinstance(node, ast.Call) else node
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _module_statements(body: list) -> list:
    """The statements run at import: the module's own, and those inside its top-level if/try/with blocks."""
    found = []
    for node in body:
        found.append(node)
        for field in ("body", "orelse", "finalbody", "handlers"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found += _module_statements(getattr(node, field, []) or [])
    return found


def module_level_state(source: str) -> list[str]:
    """Names a module binds at import to a mutable container, lock or cache, and functions with a hidden cache.

    A non-empty literal bound to an UPPER_CASE name is a constant (column lists, lookup tables); an
    empty one, or one bound to another name, is there to be filled.
    """
    found = []
    for node in _module_statements(ast.parse(source).body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [
                f"{node.name} (@{_called_name(d)})"
                for d in node.decorator_list
                if _called_name(d) in CACHING_DECORATORS
            ]
            continue
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        literal = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp))
        empty = isinstance(value, (ast.Dict, ast.List, ast.Set)) and not getattr(
            value, "keys", getattr(value, "elts", None)
        )
        constant = all(name.isupper() or name == "__all__" for name in names)
        if (
            (isinstance(value, ast.Call) and _called_name(value) in STATEFUL_CALLS)
            or empty
            or (literal and not constant)
        ):
            found += [f"line {node.lineno}: {name}" for name in names]
    return found


def test_no_module_in_data_holds_module_level_state():
    """Caches and locks belong to the app (data.cache.AnalysisCache, passed in), never to a module of data/."""
    offenders = {
        _rel(path): state
        for path in sorted((ROOT / "data").rglob("*.py"))
        if (state := module_level_state(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source, found",
    [
        ("_cache = ByteLRU(CACHE_BYTES)", ["line 1: _cache"]),
        ("from data import cache\n_cache = cache.ByteLRU(10)", ["line 2: _cache"]),
        ("_drawing: dict = {}", ["line 1: _drawing"]),
        ("_lock = threading.Lock()", ["line 1: _lock"]),
        ("REGISTRY = dict()", ["line 1: REGISTRY"]),
        ("SEEN = set()\nPENDING = []", ["line 1: SEEN", "line 2: PENDING"]),
        ("registry = {'a': 1}", ["line 1: registry"]),
        ("try:\n    _tables = OrderedDict()\nexcept ImportError:\n    pass", ["line 2: _tables"]),
        ("@functools.lru_cache(maxsize=8)\ndef table(n):\n    return n", ["table (@lru_cache)"]),
        ("@cache\ndef table(n):\n    return n", ["table (@cache)"]),
        ("COLUMNS = ['feature', 'impact']\nKINDS = {'mean': 1}\n__all__ = ['f']", []),
        ("def f():\n    seen = {}\n    return seen", []),
        ("class Store:\n    items = {}\n    def __init__(self):\n        self.cache = ByteLRU(1)", []),
    ],
)
def test_module_level_state_finds_caches_locks_and_containers(source, found):
    assert module_level_state(source) == found


# Files small enough to read in one sitting: a module of data/ holds one thing in at most this many
# lines, and no function of the app (decorators and nested functions counted in) runs longer than that.
MAX_DATA_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions and methods (nested ones too) longer than ``limit`` lines, from their first decorator."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - start + 1
            if length > limit:
                found.append(f"line {node.lineno}: {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_the_limit():
    problems = {}
    for package in ("dashboard", "data", "ingest"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if found := long_functions(path.read_text(encoding="utf-8")):
                problems[_rel(path)] = found
    assert problems == {}


def test_each_module_of_data_stays_within_the_limit():
    lines = {_rel(path): len(path.read_text(encoding="utf-8").splitlines()) for path in (ROOT / "data").rglob("*.py")}
    assert {name: n for name, n in lines.items() if n > MAX_DATA_MODULE_LINES} == {}


@pytest.mark.parametrize(
    "source, found",
    [
        ("def f():\n" + "    x = 1\n" * 80, ["line 1: f (81 lines)"]),
        ("def f():\n" + "    x = 1\n" * 79, []),
        ("@a\n@b\ndef f():\n" + "    x = 1\n" * 78, ["line 3: f (81 lines)"]),
        (
            "def outer():\n    def inner():\n" + "        x = 1\n" * 80,
            ["line 1: outer (82 lines)", "line 2: inner (81 lines)"],
        ),
        ("class C:\n    async def m(self):\n" + "        x = 1\n" * 80, ["line 2: m (81 lines)"]),
    ],
)
def test_long_functions_counts_decorators_methods_and_nested_functions(source, found):
    """The check above is only as good as this."""
    assert long_functions(source) == found
