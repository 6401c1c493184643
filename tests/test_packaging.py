"""The wheel carries every subpackage and stylesheet, and mltop.core stays free of Textual."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            "-q",
        ],
        capture_output=True,
        text=True,
        cwd=build,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("mltop-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _expected(folder: str, package: str, pattern: str) -> set[str]:
    root = REPO / folder
    return {
        f"{package.replace('.', '/')}/{p.relative_to(root).as_posix()}"
        for p in root.rglob(pattern)
        if "__pycache__" not in p.parts
    }


@pytest.mark.parametrize(("folder", "package"), [("core", "mltop.core"), ("tui", "mltop.tui")])
def test_every_module_and_stylesheet_is_in_the_wheel(
    wheel_files: set[str], folder: str, package: str
) -> None:
    expected = _expected(folder, package, "*.py") | _expected(folder, package, "*.tcss")
    missing = sorted(expected - wheel_files)
    assert not missing, f"left out of the wheel (add the subpackage to pyproject): {missing}"


def test_the_sample_project_ships_with_its_pipelines(wheel_files: set[str]) -> None:
    expected = {
        f"mltop/sample_project/{p.relative_to(REPO / 'sample_project').as_posix()}"
        for p in (REPO / "sample_project").rglob("*")
        if p.is_file()
        and p.suffix in {".py", ".yaml", ".yml", ".md"}
        and "__pycache__" not in p.parts
        and "runs" not in p.parts
        and "tests" not in p.parts
    }
    assert expected and not sorted(expected - wheel_files)


def test_no_top_level_core_or_tui_package(wheel_files: set[str]) -> None:
    tops = {name.split("/")[0] for name in wheel_files}
    assert "core" not in tops and "tui" not in tops
    assert "mltop/__init__.py" not in wheel_files  # mltop stays an implicit namespace


def test_importing_mltop_core_never_imports_textual() -> None:
    modules = sorted(
        "mltop.core." + ".".join(p.relative_to(REPO / "core").with_suffix("").parts)
        for p in (REPO / "core").rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
