"""The simulated serving log holds each effect a monitor should find, on the days it starts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from serve import DRIFT_FROM, MISSING_FROM, NEW_CHANNEL, NEW_CHANNEL_FROM, SWITCH_AT, main, simulate

START = date(2026, 11, 1)


@pytest.fixture(scope="module")
def days() -> list[dict[str, np.ndarray]]:
    log, _ = simulate(START, 30, seed=7)
    stamps = log.column("timestamp").cast("int64").to_numpy()
    day = (stamps - stamps.min() // 86_400_000 * 86_400_000) // 86_400_000
    columns = {
        name: np.array(log.column(name).to_pylist(), dtype=object) for name in log.column_names
    }
    return [{k: v[day == d] for k, v in columns.items()} for d in range(30)]


def accuracy(day: dict[str, np.ndarray], region: str) -> float:
    keep = (day["Region"] == region) & np.array([v is not None for v in day["label"]])
    return float(np.mean(day["prediction"][keep] == day["label"][keep]))


def test_thirty_days_of_requests_in_time_order(days: list[dict[str, np.ndarray]]) -> None:
    assert len(days) == 30
    assert all(150 <= len(d["timestamp"]) <= 220 for d in days)
    log, _ = simulate(START, 30, seed=7)
    stamps = log.column("timestamp").cast("int64").to_numpy()
    assert np.all(np.diff(stamps) >= 0)
    assert log.column("request_id")[0].as_py() == "req-000001"
    again, _ = simulate(START, 30, seed=7)
    assert again.equals(log)


def test_incomes_fall_and_debt_rises_from_day_ten(days: list[dict[str, np.ndarray]]) -> None:
    def mean(name: str, chosen: list[dict[str, np.ndarray]]) -> float:
        return float(np.mean(np.concatenate([d[name] for d in chosen]).astype(float)))

    before, late = days[:DRIFT_FROM], days[-5:]
    assert mean("Income (k)", late) < mean("Income (k)", before) - 8
    assert mean("Debt to income", late) > mean("Debt to income", before) + 0.08


def test_a_new_channel_from_day_fifteen_and_missing_values_from_day_twenty_five(
    days: list[dict[str, np.ndarray]],
) -> None:
    new = [float(np.mean(d["Channel"] == NEW_CHANNEL)) for d in days]
    assert all(share == 0 for share in new[:NEW_CHANNEL_FROM])
    assert all(share > 0 for share in new[NEW_CHANNEL_FROM:])
    missing = [float(np.mean([v is None for v in d["Credit utilization"]])) for d in days]
    assert all(share == 0 for share in missing[:MISSING_FROM])
    assert missing[-1] > 0.15 and all(share > 0 for share in missing[MISSING_FROM:])


def test_v2_answers_from_day_twenty_and_one_region_loses_quality(
    days: list[dict[str, np.ndarray]],
) -> None:
    assert all(set(d["model_version"]) == {"v1"} for d in days[:SWITCH_AT])
    assert all(set(d["model_version"]) == {"v2"} for d in days[SWITCH_AT:])
    merged_before = {k: np.concatenate([d[k] for d in days[:SWITCH_AT]]) for k in days[0]}
    merged_after = {k: np.concatenate([d[k] for d in days[SWITCH_AT:]]) for k in days[0]}
    south_drop = accuracy(merged_before, "south") - accuracy(merged_after, "south")
    north_drop = accuracy(merged_before, "north") - accuracy(merged_after, "north")
    assert south_drop > 0.12 and south_drop > north_drop + 0.08


def test_outcomes_arrive_for_part_of_the_rows_and_late(days: list[dict[str, np.ndarray]]) -> None:
    labelled = [float(np.mean([v is not None for v in d["label"]])) for d in days]
    assert all(0.7 < share < 0.97 for share in labelled[:25])
    assert labelled[-1] < 0.4


def test_main_writes_the_log_and_the_reference(tmp_path: Path) -> None:
    log, ref = tmp_path / "log.parquet", tmp_path / "ref.parquet"
    assert main(["--days", "3", "--log", str(log), "--reference", str(ref)]) == 0
    written = pq.read_table(log)
    reference = pq.read_table(ref)
    assert str(written.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    assert set(written.column_names) - set(reference.column_names) == {
        "timestamp",
        "request_id",
        "model_version",
    }
    assert reference.num_rows == 1200
    assert all(reference.column(name).null_count == 0 for name in reference.column_names)
