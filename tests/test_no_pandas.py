"""mltop's processes never load pandas (36 MB resident for good): not the app at start-up or
when its first scan imports runs, not `mltop ingest`; yet pyarrow still converts pandas objects
when asked to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import write_run

SCRIPT = r"""
import sys
from pathlib import Path
from mltop.tui.app import MltopApp

app = MltopApp(Path(sys.argv[1]), Path(sys.argv[2]), live=False)
shown = []

def wait() -> None:
    if app.scans_done and app.runs_screen.settled:
        shown.append(app.runs_screen.table.row_count)
        app.exit(0)
    else:
        app.set_timer(0.1, wait)

app.call_later(wait)
app.run(headless=True, size=(120, 40))
app.close_store()
print("rows", shown[0])
print("pandas", "pandas" in sys.modules)
import pandas as pd
import pyarrow as pa
print("from_pandas", pa.Table.from_pandas(pd.DataFrame({"a": [1, 2]})).num_rows)
"""


def run_on_three_runs(script: str, tmp_path: Path) -> list[str]:
    """``script`` in a fresh Python over a project of three run folders and a new store: the
    lines it printed (it must exit 0)."""
    for name in ("a", "b", "c"):
        write_run(tmp_path / "project" / "runs", name)
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "project"), str(tmp_path / "s.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def test_a_first_scan_that_imports_runs_leaves_pandas_unloaded(tmp_path: Path) -> None:
    lines = run_on_three_runs(SCRIPT, tmp_path)
    assert "rows 3" in lines  # the scan did import the runs
    assert "pandas False" in lines
    assert "from_pandas 2" in lines


CLI = r"""
import sys
from mltop.core.cli import main

code = main(["ingest", sys.argv[1], "--store", sys.argv[2]])
print("code", code)
print("pandas", "pandas" in sys.modules)
"""


def test_an_ingest_that_imports_runs_leaves_pandas_unloaded(tmp_path: Path) -> None:
    lines = run_on_three_runs(CLI, tmp_path)
    assert "code 0" in lines
    assert "pandas False" in lines
