"""Prediction quality from outcome counts: scikit-learn's definitions, computed on counts.

:func:`classification` takes the rows of one window and slice from
:func:`mltop.core.monitor.aggregate.outcome_counts` (each row a distinct outcome with its
count) and gives accuracy, precision, recall and F1 for the positive class with
``zero_division=0``; the ROC AUC is computed by DuckDB (``aggregate.outcome_counts``) and
passed in. :func:`regression` turns DuckDB's sums into MAE, RMSE and R² (``r2_score`` with
``force_finite=True``: 1 for a perfect fit of a constant, 0 otherwise).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from mltop.core.monitor.results import ClassMetrics, Performance

Outcomes = dict[str, np.ndarray]


def take(rows: Outcomes, mask: np.ndarray) -> Outcomes:
    return {k: v[mask] for k, v in rows.items()}


def groups(rows: Outcomes) -> dict[tuple[int, str], Outcomes]:
    """Rows split by (window, slice value); the query returned them ordered by both."""
    w = rows["w"].astype(np.int64)
    s = np.asarray(rows["s"], dtype=object)
    if len(w) == 0:
        return {}
    change = (w[1:] != w[:-1]) | (s[1:] != s[:-1])
    cuts = np.flatnonzero(change) + 1
    out: dict[tuple[int, str], Outcomes] = {}
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(w)], strict=True):
        out[(int(w[start]), str(s[start]))] = {k: v[start:stop] for k, v in rows.items()}
    return out


def _filled(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A nullable column as (values with nulls as 0, mask of present values)."""
    if np.ma.isMaskedArray(a):
        return np.ma.filled(a.astype(float), 0.0), ~np.ma.getmaskarray(a)
    arr = np.asarray(a)
    if arr.dtype == object:
        present = np.array([x is not None for x in arr], dtype=bool)
        return np.where(present, arr, 0).astype(float), present
    return arr.astype(float), ~np.isnan(arr.astype(float))


def confusion(rows: Outcomes) -> dict[str, int]:
    """Counts of the labelled rows: n, hits, tp, fp, fn, tn, positives, predicted positives."""
    n = rows["n"].astype(np.int64)
    lab, lab_ok = _filled(rows["lab"])
    labelled = lab_ok & (lab == 1)
    y, y_ok = _filled(rows["y"])
    p, p_ok = _filled(rows["p"])
    hit, hit_ok = _filled(rows["hit"])
    yl = labelled & y_ok
    out = {
        "rows": int(n.sum()),
        "labelled": int(n[labelled].sum()),
        "hits": int(n[labelled & hit_ok & (hit == 1)].sum()),
        "tp": int(n[yl & (y == 1) & p_ok & (p == 1)].sum()),
        "fp": int(n[yl & (y == 0) & p_ok & (p == 1)].sum()),
        "fn": int(n[yl & (y == 1) & ~(p_ok & (p == 1))].sum()),
        "tn": int(n[yl & (y == 0) & ~(p_ok & (p == 1))].sum()),
        "binary": int(bool(yl.any()) or not labelled.any()),
        "predicted_all": int(n[p_ok & (p == 1)].sum()),
        "predicted_labelled": int(n[labelled & p_ok & (p == 1)].sum()),
    }
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def classification(
    rows: Outcomes, auc: float | None = None, class_auc: dict[str, float | None] | None = None
) -> Performance:
    """Quality of one window and slice; ``auc`` comes from DuckDB (see aggregate._auc), and
    ``class_auc`` (each class given a score column -> its one-vs-rest AUC, None where the
    class has no positives or no negatives) for a multi-class model."""
    c = confusion(rows)
    labelled = c["labelled"]
    perf = Performance(
        task="classification",
        n_rows=c["rows"],
        n_labeled=labelled,
        labeled_share=_ratio(labelled, c["rows"]) if c["rows"] else None,
    )
    if not labelled:
        return perf
    if not c["binary"]:
        return _multiclass(rows, perf, c["hits"] / labelled, class_auc or {})
    return Performance(
        task="classification",
        n_rows=c["rows"],
        n_labeled=labelled,
        labeled_share=labelled / c["rows"],
        n_positive_labels=c["tp"] + c["fn"],
        n_predicted_positive=c["predicted_labelled"],
        accuracy=c["hits"] / labelled,
        precision=_ratio(c["tp"], c["tp"] + c["fp"]),
        recall=_ratio(c["tp"], c["tp"] + c["fn"]),
        f1=_ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        roc_auc=auc,
    )


def class_name(text: str) -> str:
    """A class as it is shown and matched: numbers without a trailing ``.0`` (DuckDB reads
    a label 2 as 2.0 when compared as a number), true/false as 1/0, text as it is."""
    low = text.lower()
    if low in ("true", "false"):
        return "1" if low == "true" else "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else str(number)


def class_matrix(rows: Outcomes) -> dict[tuple[str, str | None], int]:
    """Labelled rows counted by (label, prediction) class; a missing prediction is None."""
    lab, lab_ok = _filled(rows["lab"])
    keep = lab_ok & (lab == 1)
    out: dict[tuple[str, str | None], int] = {}
    yv = np.ma.filled(rows["yv"], None) if np.ma.isMaskedArray(rows["yv"]) else rows["yv"]
    pv = np.ma.filled(rows["pv"], None) if np.ma.isMaskedArray(rows["pv"]) else rows["pv"]
    for truth, guess, n in zip(yv[keep], pv[keep], rows["n"][keep], strict=True):
        key = (class_name(str(truth)), None if guess is None else class_name(str(guess)))
        out[key] = out.get(key, 0) + int(n)
    return out


def _multiclass(
    rows: Outcomes, base: Performance, accuracy: float, class_auc: dict[str, float | None]
) -> Performance:
    """Per-class one-vs-rest counts, and their macro averages over every class seen in the
    labels or the predictions (scikit-learn's ``average="macro"``, ``zero_division=0``)."""
    matrix = class_matrix(rows)
    classes = sorted({t for t, _ in matrix} | {g for _, g in matrix if g is not None})
    aucs = {class_name(k): v for k, v in class_auc.items()}
    per_class: dict[str, ClassMetrics] = {}
    for cls in classes:
        tp = matrix.get((cls, cls), 0)
        support = sum(n for (t, _), n in matrix.items() if t == cls)
        predicted = sum(n for (_, g), n in matrix.items() if g == cls)
        per_class[cls] = ClassMetrics(
            label=cls,
            support=support,
            predicted=predicted,
            precision=_ratio(tp, predicted),
            recall=_ratio(tp, support),
            f1=_ratio(2 * tp, support + predicted),
            roc_auc=aucs.get(cls),
        )
    # Macro ROC AUC as roc_auc_score(one-hot labels, scores, average="macro") over the classes
    # given a score column: defined only when each of them has positives and negatives.
    scored = [aucs.get(name) for name in aucs]
    macro_auc = sum(scored) / len(scored) if scored and all(a is not None for a in scored) else None
    return replace(
        base,
        accuracy=accuracy,
        precision=float(np.mean([m.precision for m in per_class.values()])),
        recall=float(np.mean([m.recall for m in per_class.values()])),
        f1=float(np.mean([m.f1 for m in per_class.values()])),
        roc_auc=macro_auc,
        per_class=per_class,
    )


def regression(n: int, labelled: int, sae: float, sse: float, var: float | None) -> Performance:
    """MAE, RMSE and R² from DuckDB's sums over the labelled rows."""
    if not labelled:
        return Performance("regression", n, 0, 0.0 if n else None)
    mae = sae / labelled
    mse = sse / labelled
    sst = (var or 0.0) * labelled
    r2 = 1.0 - sse / sst if sst > 0 else (1.0 if sse == 0 else 0.0)
    return Performance(
        task="regression",
        n_rows=n,
        n_labeled=labelled,
        labeled_share=labelled / n,
        mae=mae,
        rmse=math.sqrt(mse),
        r2=r2,
    )
