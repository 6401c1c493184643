"""Fairness across the groups of a sensitive attribute, as Fairlearn defines it.

Per group (labelled rows, like ``MetricFrame``): count, accuracy, F1, selection rate (share
predicted positive), TPR, FPR and ROC AUC; then ``demographic_parity_difference`` (largest
minus smallest selection rate, ``method="between_groups"``) and
``equalized_odds_difference`` (the larger of the TPR and the FPR differences,
``agg="worst_case"``). Also the parity difference over every row, labelled or not, which
needs predictions only and so is known before labels arrive. All from the outcome counts of
:mod:`mltop.core.monitor.performance`. A multi-class model gets what Fairlearn allows without
a positive class: accuracy and macro F1 per group; the differences stay undefined (None).
"""

from __future__ import annotations

from mltop.core.monitor.performance import Outcomes, classification, confusion
from mltop.core.monitor.results import Fairness, GroupMetrics


def _rate(a: int, b: int) -> float | None:
    return a / b if b else None


def group_metrics(group: str, rows: Outcomes, auc: float | None) -> GroupMetrics:
    c = confusion(rows)
    n = c["labelled"]
    if not c["binary"]:
        # Multi-class: what MetricFrame computes per group (accuracy, macro F1); selection
        # rates and true/false positive rates need a positive class, so Fairlearn has none.
        perf = classification(rows)
        return GroupMetrics(
            group=group,
            count=n,
            accuracy=perf.accuracy,
            f1=perf.f1,
            selection_rate=None,
            tpr=None,
            fpr=None,
            roc_auc=None,
            selection_rate_all_rows=None,
            rows=c["rows"],
        )
    positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
    return GroupMetrics(
        group=group,
        count=n,
        accuracy=_rate(c["hits"], n),
        f1=(2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]))
        if n and (c["tp"] + c["fp"] + c["fn"])
        else (0.0 if n else None),
        selection_rate=_rate(c["predicted_labelled"], n),
        # Fairlearn's rates of a group without positives (or negatives) are 0, not undefined.
        tpr=(c["tp"] / positives if positives else 0.0) if n else None,
        fpr=(c["fp"] / negatives if negatives else 0.0) if n else None,
        roc_auc=auc,
        selection_rate_all_rows=_rate(c["predicted_all"], c["rows"]),
        rows=c["rows"],
    )


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if len(known) >= 1 and len(known) == len(values) else None


def fairness(
    attribute: str, by_group: dict[str, Outcomes], auc: dict[str, float] | None = None
) -> Fairness:
    """Fairlearn's differences over the groups in ``by_group`` (group value -> its outcomes);
    ``auc`` holds each group's ROC AUC where it has one."""
    aucs = auc or {}
    groups = {g: group_metrics(g, rows, aucs.get(g)) for g, rows in sorted(by_group.items())}
    labelled = [m for m in groups.values() if m.count]
    dpd = _spread([m.selection_rate for m in labelled]) if labelled else None
    tpr = _spread([m.tpr for m in labelled]) if labelled else None
    fpr = _spread([m.fpr for m in labelled]) if labelled else None
    eod = None if tpr is None or fpr is None else max(tpr, fpr)
    all_rows = [m.selection_rate_all_rows for m in groups.values() if m.rows]
    return Fairness(
        attribute=attribute,
        groups=groups,
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        demographic_parity_difference_all_rows=_spread(list(all_rows)) if all_rows else None,
    )
