"""An Evidently 0.7 local workspace read as it is, against what Evidently's own API reads back.

The workspace and its oracle are the real ones in tests/fixtures/monitoring/ (see PROVENANCE.md):
10 daily DataDriftPreset snapshots written by Evidently 0.7.23, read back through
``Workspace(path)`` and ``Snapshot.load_model``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.fixtures import untar

from mltop.core.monitor.evidently_workspace import (
    DriftSnapshot,
    is_evidently_workspace,
    read_workspace,
)

FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
ORACLE = json.loads((FIXTURES / "oracle_evidently_workspace.json").read_text(encoding="utf-8"))
PROJECT = ORACLE["projects"][0]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return untar(FIXTURES / "evidently_workspace.tar.gz", tmp_path)


def snapshot_file(workspace: Path, index: int) -> Path:
    return workspace / PROJECT["snapshots"][index]["file"]


def as_oracle(snapshot: DriftSnapshot) -> dict[str, Any]:
    """A snapshot in the oracle's shape, every field from what mltop read."""
    return {
        "snapshot_id": snapshot.snapshot_id,
        "name": snapshot.name,
        "timestamp": snapshot.timestamp.isoformat(),
        "metadata": snapshot.metadata,
        "tags": list(snapshot.tags),
        "file": snapshot.file,
        "columns": {
            name: {
                "column_type": c.column_type,
                "stattest": c.stattest,
                "stattest_id": c.stattest_id,
                "score": c.score,
                "threshold": c.threshold,
                "drift_detected": c.drift_detected,
                "test_status": c.test_status,
            }
            for name, c in snapshot.columns.items()
        },
        "dataset": None
        if snapshot.dataset is None
        else {
            "drifted_columns_count": snapshot.dataset.drifted_columns_count,
            "drifted_columns_share": snapshot.dataset.drifted_columns_share,
            "drift_share_threshold": snapshot.dataset.drift_share_threshold,
            "dataset_drift": snapshot.dataset.dataset_drift,
        },
    }


def test_every_value_equals_what_evidently_reads_back(workspace: Path) -> None:
    read = read_workspace(workspace)
    assert read.problems == []
    assert len(read.projects) == len(ORACLE["projects"]) == 1
    project = read.projects[0]
    assert (project.project_id, project.name, project.description) == (
        PROJECT["project_id"],
        PROJECT["name"],
        PROJECT["description"],
    )
    assert len(project.snapshots) == PROJECT["snapshot_count"] == 10
    # Oldest first, as the oracle lists them; every value exactly as Evidently read it.
    assert [as_oracle(s) for s in project.snapshots] == PROJECT["snapshots"]


def test_the_drift_table_gives_each_column_its_distributions(workspace: Path) -> None:
    first = read_workspace(workspace).projects[0].snapshots[0]
    income = first.columns["income_k"]
    assert income.reference is not None and income.current is not None
    # A numerical column is drawn as a histogram: one more bin edge than densities.
    assert len(income.reference.x) == len(income.reference.y) + 1
    cosigner = first.columns["has_cosigner"]
    assert cosigner.reference is not None and cosigner.current is not None
    # A categorical one as counts per category: the reference has 1,200 rows, the day 185.
    assert set(cosigner.reference.x) == {"no", "yes"}
    assert sum(cosigner.reference.y) == 1200
    assert sum(cosigner.current.y) == int(first.metadata["rows"])


def test_dataset_drift_turns_true_from_the_thirteenth_day(workspace: Path) -> None:
    snapshots = read_workspace(workspace).projects[0].snapshots
    verdicts = {s.metadata["window_index"]: s.dataset.dataset_drift for s in snapshots if s.dataset}
    assert [k for k, v in verdicts.items() if v] == ["12", "15", "18", "21", "24", "27"]
    assert all(s.drifted_share == s.dataset.drifted_columns_share for s in snapshots if s.dataset)


def test_a_truncated_snapshot_is_one_line_and_the_rest_are_read(workspace: Path) -> None:
    bad = snapshot_file(workspace, 4)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    read = read_workspace(workspace)
    assert len(read.problems) == 1
    path, why = read.problems[0]
    assert path == bad
    assert "not valid JSON" in why and "cut short" in why and "\n" not in why
    ids = [s.snapshot_id for s in read.projects[0].snapshots]
    assert len(ids) == 9 and PROJECT["snapshots"][4]["snapshot_id"] not in ids


def test_a_snapshot_of_another_evidently_version_is_one_line(workspace: Path) -> None:
    # Written by hand in the layout Evidently 0.4-0.6 used (no such Evidently installs beside
    # 0.7 here): the metrics sit under "suite" and there is no "metric_results".
    legacy = {
        "id": "0b0c6d1e-0000-4000-8000-000000000001",
        "name": "old report",
        "timestamp": "2024-05-01T00:00:00",
        "metadata": {},
        "tags": [],
        "suite": {"metrics": [], "metric_results": [], "tests": [], "test_results": []},
        "metric_ids": [],
        "test_ids": [],
        "options": {},
    }
    old = snapshot_file(workspace, 0).parent / "0b0c6d1e-0000-4000-8000-000000000001.json"
    old.write_text(json.dumps(legacy), encoding="utf-8")
    read = read_workspace(workspace)
    assert read.problems == [(old, read.problems[0][1])]
    assert "not a report snapshot of Evidently 0.7" in read.problems[0][1]
    assert len(read.projects[0].snapshots) == 10


def test_an_unknown_metric_type_is_named_once_and_the_drift_still_read(workspace: Path) -> None:
    for index in (2, 5):
        path = snapshot_file(workspace, index)
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["metric_results"]["f" * 32] = {
            "type": "evidently:metric_result_v2:SingleValue",
            "display_name": "Row count",
            "metric_value_location": {
                "metric": {
                    "metric_id": "f" * 32,
                    "params": {"type": "evidently:metric_v2:RowCount"},
                },
                "param": {},
            },
            "tests": [],
            "value": 185.0,
        }
        path.write_text(json.dumps(doc), encoding="utf-8")
    read = read_workspace(workspace)
    assert len(read.problems) == 1
    assert "metrics other than data drift not shown (RowCount)" in read.problems[0][1]
    assert [as_oracle(s) for s in read.projects[0].snapshots] == PROJECT["snapshots"]


def test_an_empty_project_is_listed_and_named_in_one_line(workspace: Path) -> None:
    empty = workspace / "01a2446e-0000-7000-8000-000000000000"
    (empty / "snapshots").mkdir(parents=True)
    meta = {
        "id": empty.name,
        "name": "empty one",
        "description": "",
        "org_id": None,
        "version": "2",
    }
    (empty / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    read = read_workspace(workspace)
    assert read.problems == [(empty, "project 'empty one' has no snapshots")]
    by_name = {p.name: p for p in read.projects}
    assert by_name["empty one"].snapshots == ()
    assert len(by_name[PROJECT["name"]].snapshots) == 10


def test_a_fifo_in_place_of_a_snapshot_is_refused_without_blocking(workspace: Path) -> None:
    fifo = snapshot_file(workspace, 0).parent / "01a2446e-ffff-7000-8000-000000000000.json"
    os.mkfifo(fifo)
    read = read_workspace(workspace)
    assert [(p, "not a regular file" in why) for p, why in read.problems] == [(fifo, True)]
    assert len(read.projects[0].snapshots) == 10


def test_only_the_workspace_root_is_a_workspace(workspace: Path, tmp_path: Path) -> None:
    assert is_evidently_workspace(workspace)
    assert not is_evidently_workspace(workspace / PROJECT["project_id"])
    assert not is_evidently_workspace(tmp_path)
    shutil.rmtree(workspace / PROJECT["project_id"] / "snapshots")
    # A project whose snapshots folder is gone is still a project: empty, and said so.
    read = read_workspace(workspace)
    assert read.projects[0].snapshots == ()
    assert read.problems == [
        (workspace / PROJECT["project_id"], f"project {PROJECT['name']!r} has no snapshots")
    ]
