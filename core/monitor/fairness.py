"""Fairness across the groups of a sensitive attribute, as Fairlearn defines it.

Per group (labelled rows, like ``MetricFrame``): count, accuracy, F1, selection rate (share
predicted positive), TPR, FPR and ROC AUC; then ``demographic_parity_difference`` (largest
minus smallest selection rate, ``method="between_groups"``) and
``equalized_odds_difference`` (the larger of the TPR and the FPR differences,
``agg="worst_case"``). Also the parity difference over every row, labelled or not, which
needs predictions only and so is known before labels arrive. All from the outcome counts of
:mod:`mltop.core.monitor.performance`. A multi-class model gets what Fairlearn allows without
a positive class: accuracy and macro F1 per group, and, where each class has a score column,
ROC AUC one-vs-rest macro-averaged over those classes (scikit-learn's
``roc_auc_score(multi_class="ovr", average="macro")``), the same as the whole log's. A group
where a class has no labelled rows (or no other class has) has no such AUC: scikit-learn
refuses it, and the group says why in ``roc_auc_note``. The differences stay undefined (None).
"""

from __future__ import annotations

from mltop.core.monitor.performance import Outcomes, class_name, classification, confusion
from mltop.core.monitor.results import Fairness, GroupMetrics, Performance


def _rate(a: int, b: int) -> float | None:
    return a / b if b else None


def group_metrics(
    group: str,
    rows: Outcomes,
    auc: float | None,
    class_auc: dict[str, float | None] | None = None,
) -> GroupMetrics:
    """One group's metrics; ``class_auc`` (multi-class: each class given a score column ->
    its one-vs-rest AUC in this group, None where undefined) gives the macro ROC AUC."""
    c = confusion(rows)
    n = c["labelled"]
    if not c["binary"]:
        # Multi-class: what MetricFrame computes per group (accuracy, macro F1); selection
        # rates and true/false positive rates need a positive class, so Fairlearn has none.
        perf = classification(rows, None, class_auc)
        return GroupMetrics(
            group=group,
            count=n,
            accuracy=perf.accuracy,
            f1=perf.f1,
            selection_rate=None,
            tpr=None,
            fpr=None,
            roc_auc=perf.roc_auc,
            selection_rate_all_rows=None,
            rows=c["rows"],
            roc_auc_note=_missing_auc(perf, class_auc) if n and perf.roc_auc is None else None,
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


def _missing_auc(perf: Performance, class_auc: dict[str, float | None] | None) -> str | None:
    """Why the macro AUC of a labelled multi-class group is undefined, in a few words: the
    classes without labelled rows in the group, else the one that holds them all, else the
    classes whose score column is empty there."""
    if not class_auc:
        return None
    undefined = [class_name(name) for name, value in class_auc.items() if value is None]
    support = {name: m.support for name, m in perf.per_class.items()}
    absent = [name for name in undefined if not support.get(name)]
    if absent:
        return f"no {', '.join(absent)} labels"
    alone = [name for name in undefined if support.get(name) == perf.n_labeled]
    if alone:
        return f"only {alone[0]} labels"
    return f"no {', '.join(undefined)} scores"


def _spread(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) - min(known) if len(known) >= 1 and len(known) == len(values) else None


def fairness(
    attribute: str,
    by_group: dict[str, Outcomes],
    auc: dict[str, float] | None = None,
    class_auc: dict[str, dict[str, float | None]] | None = None,
) -> Fairness:
    """Fairlearn's differences over the groups in ``by_group`` (group value -> its outcomes);
    ``auc`` holds each group's ROC AUC where it has one, ``class_auc`` each group's
    one-vs-rest AUC per class of a multi-class model (see :func:`group_metrics`)."""
    aucs = auc or {}
    per_class = class_auc or {}
    groups = {
        g: group_metrics(g, rows, aucs.get(g), per_class.get(g))
        for g, rows in sorted(by_group.items())
    }
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
