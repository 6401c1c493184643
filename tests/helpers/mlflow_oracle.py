"""Comparing what mltop imported from an MLflow store with the oracle: what MLflow's own client
reported for the same runs when the fixture was made (tests/fixtures/mlflow/PROVENANCE.md)."""

from __future__ import annotations

from typing import Any

from mltop.core.entities import RunRecord


def assert_run_matches_oracle(run: RunRecord, expected: dict[str, Any]) -> None:
    """The fields every way of reading MLflow (SQLite, file store, REST) must give ``run`` as
    the oracle's run ``expected`` has them; MLflow's times are in milliseconds, mltop's in
    seconds."""
    assert run.name == expected["run_name"]
    assert run.status == expected["status"]
    assert run.lifecycle == expected["lifecycle_stage"]
    assert run.experiment == expected["experiment_name"]
    assert run.start_time == expected["start_time"] / 1000
