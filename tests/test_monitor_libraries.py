"""The monitor against the live libraries, not only the recorded oracle.

Evidently 0.7.23, Fairlearn and scikit-learn are installed with the test extras; each test runs
one of them on the same rows the monitor read (pandas from the fixture's Parquet files, or data
written here with pyarrow) and compares what it says with the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers.fixtures import untar
from scipy import stats

from mltop.core.monitor import MonitorConfig, MonitorReport, build_report
from mltop.core.monitor.drift import Counts, ks_pvalue, z_pvalue

FIXTURE = Path(__file__).parent / "fixtures" / "monitoring"
NUMERICAL = ["income_k", "debt_to_income", "credit_utilization", "account_age_months"]
NUMERICAL += ["num_open_accounts"]
CATEGORICAL = ["channel", "has_cosigner"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untar(FIXTURE / "data.tar.gz", tmp_path_factory.mktemp("monitoring-live"))


@pytest.fixture(scope="module")
def report(data: Path) -> MonitorReport:
    return build_report(
        MonitorConfig(
            log=str(data / "prediction_log.parquet"),
            reference=str(data / "reference.parquet"),
            sensitive=("group",),
        )
    )


@pytest.fixture(scope="module")
def frames(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(data / "prediction_log.parquet"), pd.read_parquet(
        data / "reference.parquet"
    )


def _day(log: pd.DataFrame, day: int) -> pd.DataFrame:
    start = pd.Timestamp("2025-03-01", tz="UTC") + pd.Timedelta(days=day)
    return log[(log["timestamp"] >= start) & (log["timestamp"] < start + pd.Timedelta(days=1))]


def _evidently(current: pd.DataFrame, reference: pd.DataFrame) -> dict[str, tuple[float, str]]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({c: df[c].astype("float64") for c in NUMERICAL})
        for c in CATEGORICAL:
            out[c] = df[c].astype(object).where(df[c].notna(), np.nan)
        return out

    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(frame(current), data_definition=definition),
        Dataset.from_pandas(frame(reference), data_definition=definition),
    )
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            out[config["column"]] = (float(metric["value"]), config["method"])
    return out


@pytest.mark.parametrize("day", [None, 6, 27])
def test_drift_scores_match_evidentlys_data_drift_preset(
    report: MonitorReport, frames: tuple[pd.DataFrame, pd.DataFrame], day: int | None
) -> None:
    log, reference = frames
    section = report.overall if day is None else report.windows[day]
    current = log if day is None else _day(log, day)
    for column, (score, method) in _evidently(current, reference).items():
        assert section.drift[column].test_name == method
        assert section.drift[column].statistic == pytest.approx(score, rel=1e-9), column


def test_fairness_matches_fairlearn_on_the_days_of_the_group_b_drop(
    report: MonitorReport, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
        true_positive_rate,
    )

    log, _ = frames
    for day in (21, 25, 29):
        rows = _day(log, day)
        rows = rows[rows["label"].notna()]
        y, yhat, group = rows["label"].astype(int), rows["prediction"].astype(int), rows["group"]
        got = report.windows[day].fairness["group"]
        assert got.demographic_parity_difference == pytest.approx(
            demographic_parity_difference(y, yhat, sensitive_features=group), abs=1e-12
        )
        assert got.equalized_odds_difference == pytest.approx(
            equalized_odds_difference(y, yhat, sensitive_features=group), abs=1e-12
        )
        frame = MetricFrame(
            metrics={"sr": selection_rate, "tpr": true_positive_rate},
            y_true=y,
            y_pred=yhat,
            sensitive_features=group,
        )
        for name, values in frame.by_group.to_dict(orient="index").items():
            assert got.groups[name].selection_rate == pytest.approx(values["sr"], abs=1e-12)
            assert got.groups[name].tpr == pytest.approx(values["tpr"], abs=1e-12)


def test_quality_per_model_version_matches_scikit_learn(
    report: MonitorReport, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    log, _ = frames
    labelled = log[log["label"].notna()]
    assert set(report.overall.performance_by_version) == {"v1", "v2"}
    for version, rows in labelled.groupby("model_version"):
        got = report.overall.performance_by_version[str(version)]
        y = rows["label"].astype(int)
        assert got.n_labeled == len(rows)
        assert got.accuracy == pytest.approx(accuracy_score(y, rows["prediction"]), abs=1e-12)
        assert got.f1 == pytest.approx(f1_score(y, rows["prediction"]), abs=1e-12)
        assert got.roc_auc == pytest.approx(roc_auc_score(y, rows["prediction_proba"]), abs=1e-12)
    # Window 20 is the first day of v2: its rows are all v2.
    assert set(report.windows[20].performance_by_version) == {"v2"}


def test_regression_quality_matches_scikit_learn(tmp_path: Path) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(7)
    n = 3000
    ts = pd.Timestamp("2025-06-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 10 * 86400, n), "s")
    x = rng.normal(size=n)
    y = 3 * x + rng.normal(size=n)
    label = np.where(rng.uniform(size=n) < 0.6, y, np.nan)  # labels on about 60% of rows
    table = pa.table(
        {
            "Event Time": pa.array(ts.sort_values()),
            "x (scaled)": x,
            "prediction": 3 * x + 0.5,
            "target": pa.array(label, mask=np.isnan(label)),
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    pq.write_table(table.slice(0, 800), tmp_path / "ref.parquet")
    report = build_report(
        MonitorConfig(
            log=str(tmp_path / "log.parquet"),
            reference=str(tmp_path / "ref.parquet"),
            timestamp="Event Time",
        )
    )
    got = report.overall.performance
    assert got is not None and got.task == "regression"
    keep = ~np.isnan(label)
    truth, guess = label[keep], (3 * x + 0.5)[keep]
    assert got.n_labeled == int(keep.sum())
    assert got.mae == pytest.approx(mean_absolute_error(truth, guess), rel=1e-12)
    assert got.rmse == pytest.approx(np.sqrt(mean_squared_error(truth, guess)), rel=1e-12)
    assert got.r2 == pytest.approx(r2_score(truth, guess), rel=1e-9)
    assert report.roles.features == ("x (scaled)",)  # a name with a space and parentheses


def _counts(values: np.ndarray) -> Counts:
    uniq, n = np.unique(values, return_counts=True)
    return Counts(uniq, n)


def test_ks_on_counts_matches_scipy_above_and_below_its_exact_size() -> None:
    rng = np.random.default_rng(3)
    for size in (500, 30_000):
        ref = np.round(rng.normal(size=size), 2)
        cur = np.round(rng.normal(0.05, 1.1, size=size + 7), 2)
        expected = stats.ks_2samp(ref, cur).pvalue
        assert ks_pvalue(_counts(ref), _counts(cur)) == pytest.approx(expected, rel=1e-9)


def test_z_test_of_one_shared_value_is_no_drift_as_in_evidently() -> None:
    from evidently.legacy.calculations.stattests.z_stattest import _z_stat_test
    from evidently.legacy.core import ColumnType

    same = np.array(["yes"] * 10, dtype=object)
    assert z_pvalue(_counts(same), _counts(same)) == 1.0
    ref = np.array(["no"] * 30 + ["yes"] * 10, dtype=object)
    cur = np.array(["no"] * 12 + ["yes"] * 20, dtype=object)
    expected, _ = _z_stat_test(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.05)
    assert z_pvalue(_counts(ref), _counts(cur)) == pytest.approx(expected, rel=1e-12)


def test_multiclass_quality_and_fairness_match_scikit_learn_and_fairlearn(tmp_path: Path) -> None:
    from fairlearn.metrics import MetricFrame
    from helpers.multiclass_log import multiclass_log
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    from mltop.core.monitor import Performance

    classes = ["bird", "cat", "dog"]
    frame = multiclass_log(tmp_path, classes)
    report = build_report(
        MonitorConfig(
            log=str(tmp_path / "log.parquet"),
            reference=str(tmp_path / "ref.parquet"),
            sensitive=("group",),
            class_scores=tuple((c, f"p_{c}") for c in classes),
            window="day",
        )
    )
    assert report.roles.features == ("x",)  # the score columns are not features

    def check(got: Performance | None, rows: pd.DataFrame) -> None:
        assert got is not None
        rows = rows[rows["label"].notna()]
        y, p = rows["label"].astype(str), rows["prediction"].astype(str)
        assert got.n_labeled == len(rows)
        assert got.accuracy == pytest.approx(accuracy_score(y, p), abs=1e-12)
        for name in ("precision", "recall", "f1"):
            index = ("precision", "recall", "f1").index(name)
            macro = precision_recall_fscore_support(y, p, average="macro", zero_division=0)
            assert getattr(got, name) == pytest.approx(macro[index], abs=1e-12), name
        seen = sorted(set(y) | set(p))
        precision, recall, f1, support = precision_recall_fscore_support(
            y, p, labels=seen, average=None, zero_division=0
        )
        assert list(got.per_class) == seen
        for k, cls in enumerate(seen):
            mine = got.per_class[cls]
            assert (mine.precision, mine.recall, mine.f1) == pytest.approx(
                (precision[k], recall[k], f1[k]), abs=1e-12
            )
            assert mine.support == support[k]
        onehot = (y.to_numpy()[:, None] == np.array(classes)[None, :]).astype(int)
        scores = rows[[f"p_{c}" for c in classes]].to_numpy()
        if onehot.min(axis=0).max() == 0 and onehot.max(axis=0).min() == 1:
            expected = roc_auc_score(onehot, scores, average=None)
            assert got.roc_auc == pytest.approx(float(np.mean(expected)), abs=1e-12)
            for k, cls in enumerate(classes):
                assert got.per_class[cls].roc_auc == pytest.approx(expected[k], abs=1e-12)

    check(report.overall.performance, frame)
    day = frame["timestamp"].dt.floor("D")
    for k, section in enumerate(report.windows):
        check(section.performance, frame[day == day.min() + pd.Timedelta(days=k)])
    for version in ("v1", "v2"):
        check(
            report.overall.performance_by_version[version], frame[frame["model_version"] == version]
        )

    # Fairness: what MetricFrame gives per group without a positive class; no parity differences.
    rows = frame[frame["label"].notna()]
    mf = MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "f1": lambda t, g: f1_score(t, g, average="macro", zero_division=0),
        },
        y_true=rows["label"].astype(str),
        y_pred=rows["prediction"].astype(str),
        sensitive_features=rows["group"],
    )
    fair = report.overall.fairness["group"]
    for group in ("A", "B"):
        assert fair.groups[group].accuracy == pytest.approx(mf.by_group.loc[group, "accuracy"])
        assert fair.groups[group].f1 == pytest.approx(mf.by_group.loc[group, "f1"], abs=1e-12)
        assert fair.groups[group].selection_rate is None
    assert fair.demographic_parity_difference is None
    assert fair.equalized_odds_difference is None


def test_multiclass_roc_auc_per_group_is_scikit_learns_ovr_macro_or_says_why_not(
    tmp_path: Path,
) -> None:
    import warnings

    from helpers.multiclass_log import multiclass_log
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    from mltop.core.monitor.render import render_markdown

    classes = ["bird", "cat", "dog"]
    frame = multiclass_log(tmp_path, classes)
    # Group C: half of B's rows, none of them a labelled bird (its unlabelled rows stay).
    moved = (frame["group"] == "B") & (frame["label"] != "bird") & (frame.index % 2 == 0)
    frame.loc[moved, "group"] = "C"
    frame.to_parquet(tmp_path / "log.parquet")
    report = build_report(
        MonitorConfig(
            log=str(tmp_path / "log.parquet"),
            reference=str(tmp_path / "ref.parquet"),
            sensitive=("group",),
            class_scores=tuple((c, f"p_{c}") for c in classes),
            window="day",
        )
    )

    def check(fairness, rows: pd.DataFrame) -> int:
        """Each group's AUC against scikit-learn's; the number of groups it refuses."""
        refused = 0
        rows = rows[rows["label"].notna()]
        for group, got in fairness.groups.items():
            mine = rows[rows["group"] == group]
            scores = mine[[f"p_{c}" for c in classes]].to_numpy()
            with warnings.catch_warnings():
                # A class without positives (or negatives) in the group: scikit-learn warns
                # and answers NaN (older versions raise).
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                try:
                    expected = roc_auc_score(
                        mine["label"].astype(str), scores, multi_class="ovr", average="macro",
                        labels=classes,
                    )  # fmt: skip
                except ValueError:
                    expected = float("nan")
            if np.isnan(expected):
                refused += 1
                assert got.roc_auc is None and got.roc_auc_note, group
                continue
            assert got.roc_auc == pytest.approx(expected, abs=1e-12), group
            assert got.roc_auc_note is None
        return refused

    overall = report.overall.fairness["group"]
    assert check(overall, frame) == 1
    assert overall.groups["C"].roc_auc_note == "no bird labels"
    assert overall.groups["A"].roc_auc is not None and overall.groups["B"].roc_auc is not None
    day = frame["timestamp"].dt.floor("D")
    for k, section in enumerate(report.windows):
        check(section.fairness["group"], frame[day == day.min() + pd.Timedelta(days=k)])
    table = render_markdown(report)
    assert "| C | " in table and "| no bird labels |" in table


def test_integer_labels_of_three_classes_are_multiclass_not_binary(tmp_path: Path) -> None:
    from helpers.multiclass_log import multiclass_log
    from sklearn.metrics import f1_score

    frame = multiclass_log(tmp_path, [0, 1, 2])
    report = build_report(
        MonitorConfig(
            log=str(tmp_path / "log.parquet"),
            reference=str(tmp_path / "ref.parquet"),
            class_scores=tuple((str(c), f"p_{c}") for c in (0, 1, 2)),
        )
    )
    got = report.overall.performance
    rows = frame[frame["label"].notna()]
    assert got is not None and list(got.per_class) == ["0", "1", "2"]
    expected = f1_score(rows["label"].astype(int), rows["prediction"], average="macro")
    assert got.f1 == pytest.approx(expected, abs=1e-12)
    assert got.n_positive_labels is None
    assert got.roc_auc is not None
