"""The layering of mltop, read from the source: who may import whom.

The rules are checked on the import statements themselves (parsed with ``ast``), so an import
hidden under ``TYPE_CHECKING`` or inside a function counts as much as one at the top: a cycle
that only type checkers or a late import see still ties the modules together for a reader and
for the next change. ``tests/test_packaging.py`` checks the same core rule at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"core": "mltop.core", "tui": "mltop.tui"}


def _module_files() -> dict[str, Path]:
    """Every mltop module under core/ and tui/, by its dotted name (packages by their own)."""
    modules: dict[str, Path] = {}
    for folder, prefix in PACKAGES.items():
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((prefix, *parts))] = path
    return modules


MODULES = _module_files()


def _resolve(name: str) -> str | None:
    """The mltop module an imported name lives in (``a.b.func`` -> ``a.b``), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(module: str, path: Path) -> Iterable[str]:
    """Every dotted name ``module`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from pkg import module`` imports the module itself.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_resolve(name) for name in _imported_names(module, path)}
        graph[module] = {t for t in targets if t and t != module}
    return graph


GRAPH = _graph()


def _external_imports(module: str) -> set[str]:
    return set(_imported_names(module, MODULES[module]))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _subgraph(prefix: str) -> dict[str, set[str]]:
    return {
        m: {t for t in targets if t.startswith(prefix)}
        for m, targets in GRAPH.items()
        if m.startswith(prefix)
    }


def test_the_source_tree_is_read() -> None:
    assert "mltop.tui.app" in MODULES and "mltop.tui.screens.runs.screen" in MODULES
    assert "mltop.core.store" in GRAPH["mltop.tui.app"]


def test_screens_and_widgets_never_import_the_app_module() -> None:
    offenders = sorted(
        module
        for module, targets in GRAPH.items()
        if module.startswith(("mltop.tui.screens", "mltop.tui.widgets"))
        and "mltop.tui.app" in targets
    )
    assert offenders == []


# The tui layers, top to bottom, and what each may import: the app pushes screens, screens
# hold widgets and send messages up, widgets only draw. The keymap lists the bindings of every
# screen and widget, so it walks those two packages (importing their modules when called).
# The app and the screens stand on the same layers (a screen may push another screen).
_SCREEN_LAYERS = {
    "mltop.core",
    "mltop.tui.commands",
    "mltop.tui.context",
    "mltop.tui.keymap",
    "mltop.tui.messages",
    "mltop.tui.screens",
    "mltop.tui.widgets",
}
TUI_MAY_IMPORT = {
    "mltop.tui.app": _SCREEN_LAYERS,
    "mltop.tui.screens": _SCREEN_LAYERS,
    "mltop.tui.keymap": {"mltop.tui.screens", "mltop.tui.widgets"},
    "mltop.tui.commands": {"mltop.core"},
    "mltop.tui.messages": {"mltop.core"},
    "mltop.tui.context": {"mltop.core"},
    "mltop.tui.widgets": {"mltop.core", "mltop.tui.widgets"},
}


def _tui_layer(module: str) -> str:
    """``mltop.core`` for all of core, else the tui module or package (screens, widgets)."""
    parts = module.split(".")
    return "mltop.core" if parts[1] == "core" else ".".join(parts[:3])


def test_each_tui_layer_imports_only_what_it_is_declared_to() -> None:
    layers = {_tui_layer(m) for m in MODULES if m.startswith("mltop.tui.")}
    assert layers <= set(TUI_MAY_IMPORT), "a new tui module needs its line in TUI_MAY_IMPORT"
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith("mltop.tui.")
        for target in targets
        if _tui_layer(target) not in TUI_MAY_IMPORT[_tui_layer(module)]
    )
    assert offenders == []


def test_widgets_never_import_screens() -> None:
    offenders = sorted(
        module
        for module, targets in GRAPH.items()
        if module.startswith("mltop.tui.widgets")
        and any(t.startswith("mltop.tui.screens") for t in targets)
    )
    assert offenders == []


def test_the_app_has_everything_the_screens_context_declares(tmp_path: Path) -> None:
    """The protocol only holds if the app has each member (nothing checks it at run time)."""
    from mltop.tui.app import MltopApp
    from mltop.tui.context import AppContext

    app = MltopApp(tmp_path, scan=False)
    declared = set(AppContext.__annotations__) | {
        name for name in vars(AppContext) if callable(vars(AppContext)[name])
    }
    declared = {name for name in declared if not name.startswith("_")}
    assert {"store", "store_in_use", "start_ingest", "github_repo"} <= declared
    assert [name for name in sorted(declared) if not hasattr(app, name)] == []


def test_no_import_cycle_among_tui_modules() -> None:
    assert _cycles(_subgraph("mltop.tui")) == []


# The command line starts the TUI: it is the one part of core/ that names it, and only its
# launchers, imported inside the command that runs them (so ``import mltop.core`` stays free of
# Textual, as tests/test_packaging.py checks at run time).
CLI = "mltop.core.cli"
TUI_LAUNCHERS = {"run_app", "run_app_following", "run_logs_app"}


def _is_tui(name: str) -> bool:
    return name.split(".")[0] == "textual" or name == "mltop.tui" or name.startswith("mltop.tui.")


def test_core_never_imports_textual_or_the_tui() -> None:
    offenders = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if module.startswith("mltop.core") and module != CLI and not module.startswith(CLI + ".")
        for name in _external_imports(module)
        if _is_tui(name)
    )
    assert offenders == []


def test_the_command_line_takes_only_the_tui_launchers() -> None:
    names = {
        name
        for module in MODULES
        if module == CLI or module.startswith(CLI + ".")
        for name in _external_imports(module)
        if _is_tui(name)
    }
    taken = {name.rpartition(".")[2] for name in names if name not in MODULES}
    assert not any(name.split(".")[0] == "textual" for name in names)
    assert taken <= TUI_LAUNCHERS
    assert taken


def test_no_import_cycle_between_core_packages() -> None:
    def top(module: str) -> str:
        return ".".join(module.split(".")[:3])

    graph: dict[str, set[str]] = {}
    for module, targets in _subgraph("mltop.core").items():
        graph.setdefault(top(module), set()).update(
            top(t) for t in targets if top(t) != top(module) and t != "mltop.core"
        )
    assert _cycles(graph) == []


#: What each capability package of core may import of the rest of core, as its ``__init__.py``
#: says. The others (importers, pipelines, cli) sit above these and are held by the cycle test.
CORE_MAY_IMPORT = {
    "mltop.core.common": set(),
    "mltop.core.store": {"mltop.core.common", "mltop.core.entities"},
    "mltop.core.runs": {"mltop.core.common", "mltop.core.entities", "mltop.core.store"},
    "mltop.core.compare": {
        "mltop.core.common",
        "mltop.core.entities",
        "mltop.core.store",
        "mltop.core.runs",
    },
    "mltop.core.logs": {"mltop.core.common", "mltop.core.entities"},
    "mltop.core.monitor": {"mltop.core.common"},
    "mltop.core.registry": {
        "mltop.core.common",
        "mltop.core.compare",
        "mltop.core.entities",
        "mltop.core.importers",
        "mltop.core.runs",
        "mltop.core.store",
    },
    "mltop.core.live": {
        "mltop.core.common",
        "mltop.core.discovery",
        "mltop.core.entities",
        "mltop.core.importers",
        "mltop.core.runs",
        "mltop.core.store",
    },
    "mltop.core.system": {"mltop.core.common", "mltop.core.entities", "mltop.core.store"},
}


def test_each_core_package_imports_only_what_its_init_declares() -> None:
    def top(module: str) -> str:
        return ".".join(module.split(".")[:3])

    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in _subgraph("mltop.core").items()
        if top(module) in CORE_MAY_IMPORT
        for target in targets
        if top(target) != top(module)
        and target != "mltop.core"
        and top(target) not in CORE_MAY_IMPORT[top(module)]
    )
    assert offenders == []
