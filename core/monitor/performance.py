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

import numpy as np

from mltop.core.monitor.results import Performance

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


def classification(rows: Outcomes, auc: float | None = None) -> Performance:
    """Quality of one window and slice; ``auc`` comes from DuckDB (see aggregate._auc)."""
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
    binary = bool(c["binary"])
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    f1 = _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])
    return Performance(
        task="classification",
        n_rows=c["rows"],
        n_labeled=labelled,
        labeled_share=labelled / c["rows"],
        n_positive_labels=c["tp"] + c["fn"] if binary else None,
        n_predicted_positive=c["predicted_labelled"] if binary else None,
        accuracy=c["hits"] / labelled,
        precision=precision if binary else None,
        recall=recall if binary else None,
        f1=f1 if binary else None,
        roc_auc=auc if binary else None,
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
