"""A workspace Evidently writes now, read by mltop and by Evidently's own API: the same values.

Evidently 0.7.23 (a test extra) writes a fresh local workspace from the monitoring fixture's
log: one project whose reports compare a day with the day before (reference under 1,000 rows,
so K-S, chi-square and Z-test p-values) and one with PSI asked for. mltop's reader must give
every value Evidently reads back, and Evidently must still read the folder after mltop has.
"""

from __future__ import annotations

import math
import tarfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mltop.core.monitor.evidently_workspace import STATTEST_IDS, read_workspace

pd = pytest.importorskip("pandas")
evidently = pytest.importorskip("evidently")

FIXTURES = Path(__file__).parent / "fixtures" / "monitoring"
NUM = [
    "income_k",
    "debt_to_income",
    "credit_utilization",
    "account_age_months",
    "num_open_accounts",
]
CAT = ["channel", "has_cosigner"]


def frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in NUM:
        out[c] = df[c].astype("float64")
    for c in CAT:
        out[c] = df[c].astype(object)
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    warnings.filterwarnings("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    from evidently.ui.workspace import Workspace

    tmp = tmp_path_factory.mktemp("ews")
    with tarfile.open(FIXTURES / "data.tar.gz") as tar:
        tar.extractall(tmp, filter="data")
    log = pd.read_parquet(tmp / "data" / "prediction_log.parquet")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    day = (log["timestamp"] - pd.Timestamp(start)) // pd.Timedelta(days=1)
    definition = DataDefinition(numerical_columns=NUM, categorical_columns=CAT)
    ws = Workspace.create(str(tmp / "ws"))
    for name, method in (("day over day", None), ("psi", "psi")):
        project = ws.create_project(name, description=f"drift, {method or 'default'} tests")
        for d in (16,):
            preset = DataDriftPreset() if method is None else DataDriftPreset(method=method)
            report = Report([preset], include_tests=True, metadata={"day": d}, tags=[name])
            snapshot = report.run(
                Dataset.from_pandas(frame(log[day == d]), data_definition=definition),
                Dataset.from_pandas(frame(log[day == d - 1]), data_definition=definition),
                timestamp=start + timedelta(days=d),
                name=f"{name} {d}",
            )
            ws.add_run(project.id, snapshot, include_data=False)
    return tmp / "ws"


def test_mltop_reads_what_evidently_reads_back(workspace: Path) -> None:
    from evidently.ui.workspace import Workspace

    ours = read_workspace(workspace)
    assert ours.problems == []
    theirs = Workspace(str(workspace))
    by_id = {p.project_id: p for p in ours.projects}
    tests_seen: set[str] = set()
    for project in theirs.list_projects():
        mine = by_id[str(project.id)]
        assert (mine.name, mine.description) == (project.name, project.description)
        snapshots = {s.snapshot_id: s for s in mine.snapshots}
        assert set(snapshots) == {str(sid) for sid in theirs.list_runs(project.id)}
        for sid in theirs.list_runs(project.id):
            model = theirs.get_run(project.id, sid)
            snap = snapshots[str(sid)]
            assert snap.name == model.name and snap.timestamp == model.timestamp
            assert snap.tags == tuple(model.tags)
            for result in model.metric_results.values():
                data = result.dict() if hasattr(result, "dict") else result
                params = data["metric_value_location"]["metric"]["params"]
                status = data["tests"][0]["status"] if data.get("tests") else None
                if params["type"].endswith("ValueDrift"):
                    column = snap.columns[params["column"]]
                    value = data["value"]
                    assert column.score == value or (math.isnan(value) and math.isnan(column.score))
                    assert column.stattest == params["method"]
                    method = params["method"]
                    assert column.stattest_id == STATTEST_IDS.get(method, method)
                    assert column.threshold == params["threshold"]
                    assert column.drift_detected == (str(status).endswith("FAIL"))
                    tests_seen.add(column.stattest_id)
                else:
                    assert snap.dataset is not None
                    assert snap.dataset.drifted_columns_count == data["count"]["value"]
                    assert snap.dataset.drifted_columns_share == data["share"]["value"]
                    assert snap.dataset.dataset_drift == (str(status).endswith("FAIL"))
    # the other branch of Evidently's choice (a reference of a day) and PSI on request
    assert tests_seen == {"ks", "chisquare", "z", "psi"}
