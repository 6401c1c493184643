"""What a monitor report holds: frozen values the CLI prints and the Monitor screen draws.

A :class:`MonitorReport` has one :class:`Section` for the whole log against the reference
(``overall``) and one per time window (``windows``), each with the same parts: per-feature
drift, data quality per column, prediction quality (overall and per model version) and
fairness per sensitive attribute. Every dict is keyed by the columns' own names (and group or
version values as text), in the order the columns were given. A statistic that cannot be
computed (no rows, no labels, one class only) is ``None`` and the section's ``notes`` say why.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Roles:
    """Which column plays which part; ``features`` are the columns tested for drift."""

    timestamp: str
    features: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    prediction: str | None = None
    score: str | None = None
    label: str | None = None
    version: str | None = None
    sensitive: tuple[str, ...] = ()
    class_scores: tuple[tuple[str, str], ...] = ()  # multi-class: (class, its score column)

    def kind(self, feature: str) -> str:
        return "categorical" if feature in self.categorical else "numerical"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift test in one section, as Evidently's ValueDrift reports it.

    ``test`` is the test's registry id (``wasserstein``, ``jensenshannon``, ``ks``,
    ``chisquare``, ``z``, ``psi``) and ``test_name`` Evidently's display name. For p-value
    tests the statistic is the p-value and drift is a small one; for distances, a large one.
    """

    column: str
    kind: str  # "numerical" | "categorical"
    test: str
    test_name: str
    statistic: float | None
    threshold: float
    drifted: bool | None
    n_reference: int
    n_current: int


@dataclass(frozen=True)
class DatasetDrift:
    """Evidently's DriftedColumnsCount: the share of tested features that drifted."""

    drifted_count: int
    tested_count: int
    share: float | None
    threshold: float
    dataset_drift: bool | None


@dataclass(frozen=True)
class ColumnQuality:
    """Data quality of one column in one section; shares are of all the section's rows."""

    column: str
    missing_count: int
    missing_share: float | None
    out_of_range_count: int | None = None  # numerical features: outside the reference's min..max
    out_of_range_share: float | None = None
    new_category_count: int | None = None  # categorical features: values the reference never had
    new_category_share: float | None = None
    new_categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemaChange:
    """A column that appeared, disappeared or changed type against the reference (or a file)."""

    column: str
    change: str  # "added" | "removed" | "type"
    reference_type: str | None
    current_type: str | None
    where: str  # the file (or "log") where the change was seen


@dataclass(frozen=True)
class ClassMetrics:
    """One class of a multi-class model, one-vs-rest on the labelled rows (scikit-learn's
    ``precision_recall_fscore_support(average=None)``; ROC AUC on the class's score column)."""

    label: str
    support: int  # labelled rows of this class
    predicted: int  # labelled rows predicted as this class
    precision: float
    recall: float
    f1: float
    roc_auc: float | None = None


@dataclass(frozen=True)
class Performance:
    """Prediction quality on the labelled rows of a section.

    Classification, binary (positive class 1 or true): accuracy, precision, recall, F1 (0 when
    undefined, as scikit-learn's ``zero_division=0``) and ROC AUC on the score column.
    Multi-class: accuracy, and precision, recall and F1 macro-averaged over the classes seen
    in the labels or the predictions (as Evidently's ClassificationPreset reports them), each
    class's own in ``per_class``; ROC AUC one-vs-rest, macro, where each class has a score
    column (``class_scores``). Regression: MAE, RMSE, R² (``r2_score`` with ``force_finite``).
    """

    task: str  # "classification" | "regression"
    n_rows: int
    n_labeled: int
    labeled_share: float | None
    n_positive_labels: int | None = None
    n_predicted_positive: int | None = None
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    mae: float | None = None
    rmse: float | None = None
    r2: float | None = None
    per_class: dict[str, ClassMetrics] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupMetrics:
    """One group of a sensitive attribute, on labelled rows (as Fairlearn's MetricFrame)."""

    group: str
    count: int
    accuracy: float | None
    f1: float | None
    selection_rate: float | None
    tpr: float | None
    fpr: float | None
    roc_auc: float | None
    selection_rate_all_rows: float | None  # the share predicted positive among all its rows
    rows: int  # all rows of the group, labelled or not
    # Why a multi-class group has no ROC AUC (a class without labelled rows in it, ...).
    roc_auc_note: str | None = None


@dataclass(frozen=True)
class Fairness:
    """Fairlearn's differences between groups of one sensitive attribute.

    ``demographic_parity_difference``: max minus min selection rate over groups (labelled
    rows); ``equalized_odds_difference``: the larger of the TPR and FPR differences
    (``agg="worst_case"``); the ``_all_rows`` variant uses every row (predictions only).
    """

    attribute: str
    groups: dict[str, GroupMetrics]
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    demographic_parity_difference_all_rows: float | None


@dataclass(frozen=True)
class Distribution:
    """Reference against current for one feature: bins (numerical) or category counts."""

    column: str
    kind: str
    labels: tuple[str, ...]  # bin ranges or categories
    edges: tuple[float, ...]  # numerical: len(labels) + 1 edges; categorical: empty
    reference: tuple[int, ...]
    current: tuple[int, ...]


@dataclass(frozen=True)
class Section:
    """The whole log (``index`` -1) or one window ``[start, end)`` (ISO UTC) vs the reference."""

    index: int
    start: str
    end: str
    n_rows: int
    drift: dict[str, FeatureDrift]
    dataset_drift: DatasetDrift
    quality: dict[str, ColumnQuality]
    performance: Performance | None
    performance_by_version: dict[str, Performance]
    fairness: dict[str, Fairness]
    rows_by_version: dict[str, int]
    extra_drift: dict[str, dict[str, FeatureDrift]] = field(default_factory=dict)  # by method
    distributions: dict[str, Distribution] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "whole log" if self.index < 0 else self.start


@dataclass(frozen=True)
class MonitorReport:
    """Everything one ``build_report`` computed, with where the data came from."""

    log: str
    reference: str
    window: str  # "hour" | "day" | "week"
    roles: Roles
    reference_rows: int
    overall: Section
    windows: tuple[Section, ...]
    reference_performance: Performance | None
    schema_changes: tuple[SchemaChange, ...] = ()
    problems: tuple[str, ...] = ()  # one line each, naming the file
