"""The store package is the only code that runs SQL against the store file.

Checked on the source (with :mod:`ast`, nothing imported), like the rule that core/ never imports
Textual: the store is reached only through ``mltop.core.store``; DuckDB is imported outside it
only by the modules listed below, each for in-memory parsing that never opens the store file;
and the store itself imports nothing above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "core" / "store"

#: Modules outside the store that import duckdb, and why that is not SQL against the store file.
DUCKDB_ELSEWHERE = {
    # Compiles a user's regex with DuckDB's own engine (RE2) in a private in-memory database, so a
    # bad pattern in a filter is a QueryError with a column instead of a failure in the store.
    "core/runs/query_sql.py": "checks regex patterns in an in-memory DuckDB",
    # The parsing database: reads CSV/JSON/TSV metric files into Arrow in memory, before the
    # points are handed to Store.add_points.
    "core/tabular.py": "parses metric files in a per-thread in-memory DuckDB",
    # These three run their parse SQL on tabular.connection() and import duckdb only to turn
    # duckdb.Error into the importer's own one-line message naming the file.
    "core/importers/mlflow_metric_lines.py": "catches duckdb.Error from tabular's parsing database",
    "core/importers/dvclive.py": "catches duckdb.Error from tabular's parsing database",
    "core/importers/trackio.py": "catches duckdb.Error from tabular's parsing database",
    # The monitor reads prediction logs in place with a private in-memory DuckDB of its own:
    # source.py opens it and names unreadable files, aggregate.py runs the counting queries.
    "core/monitor/source.py": "reads the user's prediction logs in an in-memory DuckDB",
    "core/monitor/aggregate.py": "aggregates prediction logs on the monitor's in-memory DuckDB",
}

#: What the store may import from mltop besides itself: the plain types rows become, and the
#: folder for temporary files. Everything else in core asks the store, never the reverse.
STORE_MAY_IMPORT = {"mltop.core.entities", "mltop.core.common.scratch"}


def _sources(*folders: str) -> dict[str, ast.Module]:
    trees = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                rel = path.relative_to(REPO).as_posix()
                trees[rel] = ast.parse(path.read_text(encoding="utf-8"), rel)
    return trees


def _imported(tree: ast.Module) -> set[str]:
    """Every module name an import statement names, with ``from X import Y`` as ``X.Y`` too."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _outside_store() -> dict[str, ast.Module]:
    return {
        rel: tree
        for rel, tree in _sources("core", "tui").items()
        if not rel.startswith("core/store/")
    }


def test_the_store_is_a_package_of_modules_under_600_lines() -> None:
    assert not (REPO / "core" / "store.py").exists()
    modules = sorted(STORE.glob("*.py"))
    assert {p.name for p in modules} >= {"__init__.py", "connection.py", "runs.py", "points.py"}
    too_long = {p.name: n for p in modules if (n := len(p.read_text().splitlines())) > 600}
    assert too_long == {}


def test_only_the_store_and_listed_parsers_import_duckdb() -> None:
    importers = {
        rel
        for rel, tree in _outside_store().items()
        if any(name == "duckdb" or name.startswith("duckdb.") for name in _imported(tree))
    }
    assert importers == set(DUCKDB_ELSEWHERE)


def test_duckdb_outside_the_store_only_opens_in_memory_databases() -> None:
    for rel in DUCKDB_ELSEWHERE:
        tree = _sources(str(Path(rel).parent))[rel]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
            ):
                first = node.args[0] if node.args else None
                assert isinstance(first, ast.Constant) and first.value == ":memory:", (
                    f"{rel}:{node.lineno} opens a DuckDB database that is not in memory"
                )


def test_nothing_outside_the_store_reaches_into_its_modules_or_connection() -> None:
    for rel, tree in _outside_store().items():
        inner = sorted(n for n in _imported(tree) if n.startswith("mltop.core.store."))
        # ``from mltop.core.store import Store`` names mltop.core.store.Store: a public name of
        # the package, not one of its modules.
        modules = [n for n in inner if (STORE / f"{n.rsplit('.', 1)[1]}.py").exists()]
        assert modules == [], f"{rel} imports store modules {modules}; use mltop.core.store"
        touches = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == "_con"
        ]
        assert touches == [], f"{rel} uses a store's private connection at lines {touches}"


def test_the_store_imports_only_itself_entities_and_scratch() -> None:
    store = _sources("core/store")
    assert store
    for rel, tree in store.items():
        ours = {n for n in _imported(tree) if n.startswith(("mltop", "textual"))}
        above = {
            n
            for n in ours
            if not n.startswith("mltop.core.store")
            and not any(n == ok or n.startswith(ok + ".") for ok in STORE_MAY_IMPORT)
            # ``from mltop.core.common import scratch`` names the package as well as the module.
            and not any(ok.startswith(n + ".") for ok in STORE_MAY_IMPORT)
        }
        assert above == set(), f"{rel} imports {sorted(above)}"
