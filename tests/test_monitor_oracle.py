"""The monitor's numbers against Evidently, Fairlearn, scipy and scikit-learn on a real log.

The oracle file holds what those libraries computed on the fixture's prediction log (see
tests/fixtures/monitoring/PROVENANCE.md); every window and the whole log are compared, drift
test by test, to far better than 1e-6. Verdicts must match exactly, including the borderline
scores listed in the provenance (a Wasserstein of 0.10003 against a threshold of 0.1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.fixtures import untar

from mltop.core.monitor import MonitorConfig, MonitorReport, Section, aggregate, build_report

FIXTURE = Path(__file__).parent / "fixtures" / "monitoring"
ORACLE = json.loads((FIXTURE / "oracle_monitoring.json").read_text(encoding="utf-8"))
NUMERICAL = ORACLE["columns"]["numerical_features"]
CATEGORICAL = ORACLE["columns"]["categorical_features"]


def close(value: float | None, expected: float) -> bool:
    return value is not None and value == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untar(FIXTURE / "data.tar.gz", tmp_path_factory.mktemp("monitoring"))


def report_for(data: Path, log: str, **options: Any) -> MonitorReport:
    options.setdefault("reference", str(data / "reference.parquet"))
    config = MonitorConfig(log=str(data / log), sensitive=("group",), **options)
    return build_report(config)


@pytest.fixture(scope="module")
def report(data: Path) -> MonitorReport:
    return report_for(data, "prediction_log.parquet", extra_tests=("psi", "ks"))


def sections(report: MonitorReport) -> list[tuple[Section, dict[str, Any]]]:
    pairs = [(report.overall, ORACLE["overall_vs_reference"])]
    pairs += list(zip(report.windows, ORACLE["windows"], strict=True))
    return pairs


def test_roles_are_inferred_and_windows_are_the_thirty_utc_days(report: MonitorReport) -> None:
    assert report.roles.timestamp == "timestamp"
    assert report.roles.label == "label"
    assert report.roles.score == "prediction_proba"
    assert report.roles.version == "model_version"
    assert list(report.roles.features) == NUMERICAL + CATEGORICAL  # request_id, group left out
    assert report.roles.categorical == tuple(CATEGORICAL)
    assert report.window == "day"
    assert [w.start for w in report.windows] == [w["start_utc"] for w in ORACLE["windows"]]
    assert [w.end for w in report.windows] == [w["end_utc"] for w in ORACLE["windows"]]
    for section, expected in sections(report):
        assert section.n_rows == expected["n_rows"]
        assert section.rows_by_version == expected["rows_by_model_version"]
    assert report.reference_rows == ORACLE["reference"]["n_rows"]


def test_default_drift_tests_agree_with_evidently_in_every_window(report: MonitorReport) -> None:
    for section, expected in sections(report):
        oracle = expected["drift_vs_reference"]
        for column, want in oracle["columns"].items():
            got = section.drift[column]
            assert (got.test, got.test_name) == (want["stattest_id"], want["stattest"])
            assert close(got.statistic, want["score"]), (section.label, column)
            assert got.threshold == want["threshold"]
            assert got.drifted is want["drift_detected"], (section.label, column)
        ds = oracle["dataset"]
        assert section.dataset_drift.drifted_count == ds["drifted_columns_count"]
        assert close(section.dataset_drift.share, ds["drifted_columns_share"])
        assert section.dataset_drift.threshold == ds["drift_share_threshold"]
        assert section.dataset_drift.dataset_drift is ds["dataset_drift"]
    # The provenance's summary: no dataset drift on days 0-11, drift on days 12-29.
    assert [w.dataset_drift.dataset_drift for w in report.windows] == [False] * 12 + [True] * 18


def test_psi_and_ks_on_request_agree_with_evidently_and_scipy(report: MonitorReport) -> None:
    for section, expected in sections(report):
        for column, want in expected["psi_vs_reference"]["columns"].items():
            got = section.extra_drift["psi"][column]
            assert close(got.statistic, want["score"]), (section.label, column)
            assert got.drifted is want["drift_detected"]
        for column, want in expected["ks_2samp_vs_reference"].items():
            got = section.extra_drift["ks"][column]
            assert close(got.statistic, want["pvalue"]), (section.label, column)
            assert (got.n_reference, got.n_current) == (want["n_reference"], want["n_current"])
        assert set(section.extra_drift["ks"]) == set(NUMERICAL)  # K-S compares numbers only


def test_drift_against_a_small_reference_uses_ks_chi_square_and_z_as_evidently(data: Path) -> None:
    """The previous day as reference (≤ 1,000 rows) takes Evidently's p-value branch."""
    for day in (1, 12, 16, 26):
        prev = ORACLE["windows"][day - 1]
        report = report_for(
            data,
            "prediction_log.parquet",
            reference=None,
            reference_window=f"{prev['start_utc']}..{prev['end_utc']}",
            window="day",
        )
        section = next(w for w in report.windows if w.start == ORACLE["windows"][day]["start_utc"])
        oracle = ORACLE["windows"][day]["drift_vs_previous_day"]
        for column, want in oracle["columns"].items():
            got = section.drift[column]
            assert got.test == want["stattest_id"], (day, column)
            assert close(got.statistic, want["score"]), (day, column)
            assert got.drifted is want["drift_detected"], (day, column)
        assert section.dataset_drift.dataset_drift is oracle["dataset"]["dataset_drift"]


def test_prediction_quality_agrees_with_scikit_learn_in_every_window(report: MonitorReport) -> None:
    for section, expected in sections(report):
        want = expected["performance_labeled"]
        got = section.performance
        assert got is not None
        assert got.n_labeled == want["n_labeled"]
        assert got.n_positive_labels == want["n_positive_labels"]
        assert got.n_predicted_positive == want["n_predicted_positive"]
        for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
            assert close(getattr(got, metric), want[metric]), (section.label, metric)
        assert close(got.labeled_share, 1 - expected["missing_share"]["label"])
    ref = ORACLE["reference"]["performance"]
    assert report.reference_performance is not None
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert close(getattr(report.reference_performance, metric), ref[metric])


def test_fairness_agrees_with_fairlearn_in_every_window(report: MonitorReport) -> None:
    for section, expected in sections(report):
        want = expected["fairness"]
        got = section.fairness["group"]
        assert close(
            got.demographic_parity_difference, want["demographic_parity_difference_labeled"]
        )
        assert close(got.equalized_odds_difference, want["equalized_odds_difference_labeled"])
        assert close(
            got.demographic_parity_difference_all_rows,
            want["demographic_parity_difference_all_rows"],
        )
        assert set(got.groups) == set(want["per_group_labeled"])
        for group, metrics in want["per_group_labeled"].items():
            mine = got.groups[group]
            assert mine.count == metrics["count"]
            for metric in ("accuracy", "f1", "selection_rate", "tpr", "fpr", "roc_auc"):
                assert close(getattr(mine, metric), metrics[metric]), (section.label, group, metric)
            assert close(
                mine.selection_rate_all_rows, want["selection_rate_by_group_all_rows"][group]
            )


def test_data_quality_agrees_with_the_oracle_in_every_window(report: MonitorReport) -> None:
    for section, expected in sections(report):
        for column, share in expected["missing_share"].items():
            assert close(section.quality[column].missing_share, share), (section.label, column)
        for column, want in expected["new_category_share"].items():
            got = section.quality[column]
            assert close(got.new_category_share, want["new_category_share"])
            assert got.new_categories == want["new_categories"]
    assert report.windows[15].quality["channel"].new_categories == {"partner_api": 7}


def test_csv_and_jsonl_logs_give_the_parquet_report(data: Path, report: MonitorReport) -> None:
    for name in ("prediction_log.csv", "prediction_log.jsonl"):
        other = report_for(data, name, extra_tests=("psi", "ks"))
        assert other.roles == report.roles
        for mine, theirs in zip(
            (report.overall, *report.windows), (other.overall, *other.windows), strict=True
        ):
            assert mine.n_rows == theirs.n_rows
            for column, drift in mine.drift.items():
                assert close(theirs.drift[column].statistic, drift.statistic or 0.0), (name, column)
                assert theirs.drift[column].drifted is drift.drifted
            assert mine.performance == theirs.performance
            assert mine.fairness == theirs.fairness


def test_many_slice_combinations_count_auc_per_slice_with_the_same_result(
    data: Path, report: MonitorReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond a few combinations of versions and groups the AUC counts each slice on its own
    instead of at the finest grain; both routes must give the same numbers."""
    monkeypatch.setattr(aggregate, "FINE_AUC_COMBOS", 0)
    other = report_for(data, "prediction_log.parquet", extra_tests=("psi", "ks"))
    for mine, theirs in zip(
        (report.overall, *report.windows), (other.overall, *other.windows), strict=True
    ):
        assert mine.performance == theirs.performance
        assert mine.performance_by_version == theirs.performance_by_version
        assert mine.fairness == theirs.fairness
