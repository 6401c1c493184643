"""Every aggregation the monitor needs, run by DuckDB over the log in place.

The views are set up by :func:`prepare`: ``mon_log`` (the log files), ``mon_cur`` (the rows
compared, with ``__mltop_ts`` in UTC microseconds and ``__mltop_w`` the window number) and
``mon_ref`` (the reference file, or the reference window of the log). The queries then return
small results: distinct values with their counts per window (``GROUPING SETS`` gives the
whole log in the same pass), non-missing counts per column, and outcome counts per window and
slice. Python never sees the rows themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np

from mltop.core.monitor.drift import Counts
from mltop.core.monitor.source import MonitorError, first_line, is_float, is_numeric, quote

Connection = duckdb.DuckDBPyConnection  # for modules that pass it on without importing DuckDB
Outcomes = list[
    tuple[
        dict[str, np.ndarray],  # outcome counts
        dict[tuple[int, str], float],  # ROC AUC per (window, slice value)
        dict[tuple[int, str], dict[str, float]],  # one-vs-rest ROC AUC per class
    ]
]

TS = "__mltop_ts"
W = "__mltop_w"
WHOLE = -1  # the window number under which whole-log results are returned


def run(con: duckdb.DuckDBPyConnection, sql: str, where: str) -> dict[str, np.ndarray]:
    """``sql``'s result as numpy columns; a DuckDB failure is one line naming ``where``."""
    try:
        return con.execute(sql).fetchnumpy()
    except duckdb.Error as exc:
        raise MonitorError(f"{where}: {first_line(exc)}") from exc


def execute(con: duckdb.DuckDBPyConnection, sql: str, where: str) -> None:
    """Run a statement that returns nothing; a DuckDB failure is one line naming ``where``."""
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise MonitorError(f"{where}: {first_line(exc)}") from exc


def text_sql(column: str, duck_type: str) -> str:
    """A column as text: JSON values unquoted, everything else cast."""
    col = quote(column)
    return f"({col} ->> '$')" if duck_type == "JSON" else f"CAST({col} AS VARCHAR)"


def value_sql(column: str, duck_type: str, kind: str) -> tuple[str, str]:
    """The value expression of a feature and the condition that it is present (not null/NaN)."""
    if kind == "numerical":
        v = f"CAST({quote(column)} AS DOUBLE)"
        present = f"{v} IS NOT NULL" + (f" AND NOT isnan({v})" if is_float(duck_type) else "")
        return v, present
    v = text_sql(column, duck_type)
    return v, f"{v} IS NOT NULL"


def feature_counts(
    con: duckdb.DuckDBPyConnection,
    view: str,
    column: str,
    duck_type: str,
    kind: str,
    *,
    by_window: bool,
    where: str,
) -> dict[int, Counts]:
    """Distinct present values of ``column`` and their counts, per window and whole (-1)."""
    v, present = value_sql(column, duck_type, kind)
    if by_window:
        sql = (
            f"SELECT w, v, count(*) AS n FROM "
            f"(SELECT {W} AS w, {v} AS v FROM {view} WHERE {present}) "
            "GROUP BY w, v"
        )
    else:
        sql = (
            f"SELECT {WHOLE} AS w, v, count(*) AS n FROM "
            f"(SELECT {v} AS v FROM {view} WHERE {present}) GROUP BY v ORDER BY v"
        )
    res = run(con, sql, where)
    return _split(res["w"], res["v"], res["n"], kind == "numerical", by_window)


def categorical_counts(
    con: duckdb.DuckDBPyConnection,
    view: str,
    features: Sequence[tuple[str, str]],
    *,
    where: str,
) -> dict[str, dict[int, Counts]]:
    """:func:`feature_counts` of several categorical ``(column, type)`` features per window, in
    one scan of the log: a grouping set per feature (categories are few, so their tables are
    small, and reading the log and placing each row in its window is done once)."""
    if not features:
        return {}
    values = ", ".join(f"{text_sql(c, t)} AS v{k}" for k, (c, t) in enumerate(features))
    keys = ", ".join(f"v{k}" for k in range(len(features)))
    flags = ", ".join(f"grouping(v{k}) AS g{k}" for k in range(len(features)))
    sets = ", ".join(f"({W}, v{k})" for k in range(len(features)))
    res = run(
        con,
        f"SELECT {W} AS w, {keys}, {flags}, count(*) AS n FROM "
        f"(SELECT {W}, {values} FROM {view}) GROUP BY GROUPING SETS ({sets})",
        where,
    )
    out: dict[str, dict[int, Counts]] = {}
    for k, (column, _type) in enumerate(features):
        v = res[f"v{k}"]
        present = ~np.ma.getmaskarray(v) & np.array([x is not None for x in np.ma.getdata(v)])
        mask = (np.asarray(res[f"g{k}"]) == 0) & present
        out[column] = _split(res["w"][mask], np.ma.getdata(v)[mask], res["n"][mask], False, True)
    return out


def _split(
    w: np.ndarray, v: np.ndarray, n: np.ndarray, numeric: bool, by_window: bool
) -> dict[int, Counts]:
    """Rows of (window, value, count) as each window's sorted :class:`Counts`, and the whole
    log's (-1: the windows' counts merged, cheaper than a second aggregation)."""
    windows = np.asarray(w).astype(np.int64)
    values = np.asarray(v, dtype=float if numeric else object)
    counts = np.asarray(n).astype(np.int64)
    out: dict[int, Counts] = {}
    if len(windows) == 0:
        return out
    whole = None
    if by_window:
        # Sorted here rather than by DuckDB: numpy sorts 10^5 numbers faster than the query
        # does. One sort by value serves both: its runs of equal values are the whole log's
        # counts, and a stable sort of it by window keeps each window's values in order.
        # (Each (window, value) pair is one row, so the value sort need not be stable.)
        by_value = np.argsort(values)
        ordered = values[by_value]
        firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        whole = Counts(ordered[firsts], np.add.reduceat(counts[by_value], firsts))
        order = by_value[_stable_order(windows[by_value])]
        windows, values, counts = windows[order], values[order], counts[order]
    cuts = np.flatnonzero(np.diff(windows)) + 1
    for start, stop in zip(np.r_[0, cuts], np.r_[cuts, len(windows)], strict=True):
        out[int(windows[start])] = Counts(values[start:stop], counts[start:stop])
    if whole is not None:
        out[WHOLE] = whole
    return out


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """The stable argsort of non-negative integer ``keys``: as 16-bit integers when they fit,
    which numpy sorts by radix in linear time (4x faster than a merge sort on 10^5 keys)."""
    if len(keys) and int(keys.min()) >= 0 and int(keys.max()) <= np.iinfo(np.int16).max:
        keys = keys.astype(np.int16)
    return np.argsort(keys, kind="stable")


def present_counts(
    con: duckdb.DuckDBPyConnection,
    view: str,
    types: dict[str, str],
    columns: Sequence[str],
    *,
    by_window: bool,
    where: str,
) -> tuple[dict[int, int], dict[int, dict[str, int]]]:
    """Rows per window (and whole, -1) and each column's present (non-null, non-NaN) count."""
    parts = []
    for i, c in enumerate(columns):
        col = quote(c)
        if is_float(types[c]):
            parts.append(f"count(*) FILTER (WHERE NOT isnan({col})) AS c{i}")
        else:
            parts.append(f"count({col}) AS c{i}")
    select = ", ".join(["count(*) AS n", *parts])
    # Per window only: the whole log is their sum, cheaper than a second grouping set.
    sql = f"SELECT {W if by_window else WHOLE} AS w, {select} FROM {view} GROUP BY ALL ORDER BY w"
    res = run(con, sql, where)
    rows: dict[int, int] = {}
    present: dict[int, dict[str, int]] = {}
    for k, w in enumerate(res["w"].tolist()):
        rows[int(w)] = int(res["n"][k])
        present[int(w)] = {c: int(res[f"c{i}"][k]) for i, c in enumerate(columns)}
    if by_window:
        rows[WHOLE] = sum(rows.values())
        present[WHOLE] = {c: sum(int(x) for x in res[f"c{i}"]) for i, c in enumerate(columns)}
    return rows, present


def slice_counts(
    con: duckdb.DuckDBPyConnection, column: str, types: dict[str, str], where: str
) -> dict[int, dict[str, int]]:
    """Rows per window and whole log for each value of ``column`` (a version or a group)."""
    s = text_sql(column, types[column])
    sql = (
        f"SELECT {W} AS w, coalesce({s}, '(missing)') AS s, count(*) AS n FROM mon_cur "
        "GROUP BY ALL ORDER BY w, s"
    )
    res = run(con, sql, where)
    out: dict[int, dict[str, int]] = {}
    whole: dict[str, int] = {}
    for w, s_value, n in zip(res["w"].tolist(), res["s"].tolist(), res["n"].tolist(), strict=True):
        out.setdefault(int(w), {})[str(s_value)] = int(n)
        whole[str(s_value)] = whole.get(str(s_value), 0) + int(n)
    if whole:
        out[WHOLE] = dict(sorted(whole.items()))
    return out


def label_kinds(
    con: duckdb.DuckDBPyConnection, view: str, label: str, duck_type: str, where: str
) -> tuple[int, int, list[str]]:
    """How many labels read as numbers, how many as text, and up to 3 distinct labels."""
    t = text_sql(label, duck_type)
    sql = (
        f"SELECT count(*) FILTER (WHERE try_cast({t} AS DOUBLE) IS NOT NULL) AS num, "
        f"count(*) FILTER (WHERE {t} IS NOT NULL AND try_cast({t} AS DOUBLE) IS NULL) AS txt, "
        f"list(DISTINCT {t})[1:3] AS sample FROM {view}"
    )
    res = run(con, sql, where)
    sample = res["sample"][0]
    return (
        int(res["num"][0]),
        int(res["txt"][0]),
        [str(x) for x in (sample if sample is not None else [])],
    )


def distinct_labels(
    con: duckdb.DuckDBPyConnection, label: str, duck_type: str, where: str
) -> list[str]:
    """Up to 3 distinct labels of the current rows, as text (enough to tell binary from not)."""
    t = text_sql(label, duck_type)
    res = run(con, f"SELECT DISTINCT {t} AS v FROM mon_cur WHERE {t} IS NOT NULL LIMIT 3", where)
    return sorted(str(v) for v in res["v"].tolist())


def outcome_counts(
    con: duckdb.DuckDBPyConnection,
    view: str,
    *,
    label: str,
    prediction: str,
    score: str | None,
    positive: str | None,
    types: dict[str, str],
    slices: Sequence[str | None],
    by_window: bool,
    where: str,
    class_scores: dict[str, str] | None = None,
) -> Outcomes:
    """Classification outcomes counted per window (-1: whole), slice value, truth and guess,
    and the ROC AUC of the score per (window, slice value) where both classes are labelled;
    one pair per entry of ``slices`` (a column to split by, or None for no split).

    Columns: ``w``, ``s`` (slice value as text, '' when not sliced), ``lab`` (labelled), ``y``
    (label is the positive class: 1/0; NULL unlabelled or no positive class), ``p`` (prediction
    is), ``hit`` (label equals prediction), ``yv`` and ``pv`` (label and prediction as text:
    a multi-class confusion matrix), ``n``. ``class_scores`` (class -> its score column) adds
    each class's one-vs-rest AUC. The log is scanned once into a small table
    of counts at the finest grain (window × every slice column × outcome) and once more for
    the AUC's (window × slices × score) counts; every slice and the whole log are then summed
    from those tables, which hold thousands of rows where the log holds millions.
    """
    numeric = all(is_numeric(types[c]) or types[c] == "BOOLEAN" for c in (label, prediction))
    if numeric:
        y, p = f"CAST({quote(label)} AS DOUBLE)", f"CAST({quote(prediction)} AS DOUBLE)"
        labelled = f"{y} IS NOT NULL AND NOT isnan({y})"
        pos = "1.0" if positive is not None else "NULL"
    else:
        y = _norm(text_sql(label, types[label]))
        p = _norm(text_sql(prediction, types[prediction]))
        labelled = f"{y} IS NOT NULL"
        pos = _sql_text(positive) if positive is not None else "NULL"
    columns = [
        "''" if column is None else f"coalesce({text_sql(column, types[column])}, '(missing)')"
        for column in slices
    ]
    keys = ", ".join(f"{c} AS s{k}" for k, c in enumerate(columns))

    def truth(is_positive: str) -> str:
        return f"{labelled} AS lab, CASE WHEN {labelled} THEN ({is_positive})::INTEGER END AS y"

    def outcome(is_positive: str) -> str:
        return (
            f"{truth(is_positive)}, "
            f"({p} = {pos})::INTEGER AS p, "
            f"CASE WHEN {labelled} THEN ({y} = {p}) END AS hit, "
            f"CASE WHEN {labelled} THEN CAST({y} AS VARCHAR) END AS yv, "
            f"CAST({p} AS VARCHAR) AS pv"
        )

    w = W if by_window else WHOLE
    # The rows are first counted per window, slice and raw label and prediction (a few
    # distinct values), and the outcome columns (text casts included) derived from those
    # counts: the same expressions over the same column names, on thousands of rows, not
    # millions.
    raw = ", ".join(quote(c) for c in dict.fromkeys((label, prediction)))
    inner_keys = ", ".join(f"{c} AS __mltop_s{k}" for k, c in enumerate(columns))
    outer_keys = ", ".join(f"__mltop_s{k} AS s{k}" for k in range(len(columns)))
    inner = (
        f"SELECT {w} AS {W}, {inner_keys}, {raw}, count(*) AS __mltop_n FROM {view} GROUP BY ALL"
    )
    fine = (
        f"SELECT {W} AS w, {outer_keys}, {outcome(f'{y} = {pos}')}, "
        f"sum(__mltop_n)::BIGINT AS n FROM ({inner}) GROUP BY ALL"
    )
    execute(con, f"CREATE OR REPLACE TEMP TABLE mon_fine AS {fine}", where)
    counts = run(
        con,
        _sum_per_slice(
            "mon_fine", len(slices), "lab, y, p, hit, yv, pv", "sum(n)::BIGINT AS n", by_window
        )
        + " ORDER BY k, w, s",
        where,
    )
    combos = run(
        con,
        f"SELECT count(DISTINCT ({', '.join(f's{k}' for k in range(len(slices)))})) AS c "
        "FROM mon_fine",
        where,
    )
    n_combos = int(combos["c"][0])
    auc: dict[tuple[int, int, str], float] = {}
    if score is not None:
        scored = f"SELECT {w} AS w, {keys}, CAST({quote(score)} AS DOUBLE) AS score, "
        scored += f"{truth(f'{y} = {pos}')} FROM {view}"
        auc = _auc(con, scored, len(slices), n_combos, by_window, where)
    # One-vs-rest per class with a score column: the class's rows are the positives.
    by_class: dict[str, dict[tuple[int, int, str], float]] = {}
    for name, column in (class_scores or {}).items():
        literal = f"try_cast({_sql_text(name)} AS DOUBLE)" if numeric else _norm(_sql_text(name))
        scored = f"SELECT {w} AS w, {keys}, CAST({quote(column)} AS DOUBLE) AS score, "
        scored += f"{truth(f'{y} = {literal}')} FROM {view}"
        by_class[name] = _auc(con, scored, len(slices), n_combos, by_window, where)
    out = []
    for k in range(len(slices)):
        mask = np.asarray(counts["k"]) == k
        part = {name: col[mask] for name, col in counts.items() if name != "k"}
        aucs = {key[1:]: v for key, v in auc.items() if key[0] == k}
        classes: dict[tuple[int, str], dict[str, float]] = {}
        for name, values in by_class.items():
            for key, v in values.items():
                if key[0] == k:
                    classes.setdefault(key[1:], {})[name] = v
        out.append((part, aucs, classes))
    return out


def _sum_per_slice(source: str, slices: int, keys: str, sums: str, by_window: bool) -> str:
    """``sums`` over ``source`` per slice ``k`` (its value ``s``), window and ``keys``, and per
    slice value and keys over the whole log (``w`` = -1): one grouping per slice column."""
    parts = []
    for k in range(slices):
        whole = f", (s{k}, {keys})" if by_window else ""
        parts.append(
            f"SELECT {k} AS k, coalesce(w, {WHOLE}) AS w, s{k} AS s, {keys}, {sums} "
            f"FROM {source} GROUP BY GROUPING SETS ((w, s{k}, {keys}){whole})"
        )
    return " UNION ALL ".join(parts)


FINE_AUC_COMBOS = 64
"""Up to this many combinations of slice values, the AUC's counts are taken at the finest grain
(window × all slices × score) in one scan and summed per slice; beyond it (many groups of
several attributes would multiply the rows) each row is counted once per slice instead."""


def _auc(
    con: duckdb.DuckDBPyConnection,
    scored: str,
    slices: int,
    combos: int,
    by_window: bool,
    where: str,
) -> dict[tuple[int, int, str], float]:
    """ROC AUC per slice, window and slice value, as ``roc_auc_score``: P(score of a positive >
    a negative's), ties counting one half, i.e. (2·Σ pos·(negatives scored below) + Σ pos·neg
    at the same score) / (2·P·N), exact in integers (every sum is at most P·N < 2^63).

    DuckDB counts positives and negatives per distinct score; the running sums are numpy's
    (a SQL window over a million score groups took seconds, numpy takes milliseconds)."""
    kept = "lab AND y IS NOT NULL AND score IS NOT NULL AND NOT isnan(score)"
    if combos <= FINE_AUC_COMBOS:
        execute(
            con,
            "CREATE OR REPLACE TEMP TABLE mon_fine_auc AS SELECT * EXCLUDE (lab, y), "
            "count(*) FILTER (WHERE y = 1) AS pos, count(*) FILTER (WHERE y = 0) AS neg "
            f"FROM ({scored}) WHERE {kept} GROUP BY ALL",
            where,
        )
        source = "mon_fine_auc"
    else:
        source = (
            f"(SELECT *, (y = 1)::INTEGER AS pos, (y = 0)::INTEGER AS neg FROM ({scored}) "
            f"WHERE {kept})"
        )
    sums = "sum(pos)::BIGINT AS pos, sum(neg)::BIGINT AS neg"
    res = run(con, _sum_per_slice(source, slices, "score", sums, by_window), where)
    if len(res["k"]) == 0:
        return {}
    # Slice values numbered in order of appearance: a dict over a million strings is three
    # times faster than np.unique's sort of them, and the numbers need no order.
    numbers: dict[str, int] = {}
    s_index = np.fromiter(
        (numbers.setdefault(str(v), len(numbers)) for v in res["s"].tolist()),
        dtype=np.int64,
        count=len(res["s"]),
    )
    names = list(numbers)
    k = np.asarray(res["k"], dtype=np.int64)
    w = np.asarray(res["w"], dtype=np.int64) + 1  # -1 (whole log) becomes 0
    group = (k * (int(w.max()) + 1) + w) * len(names) + s_index
    # By group, then score: a sort by score (unique within a group) and a stable one by group.
    by_score = np.argsort(np.asarray(res["score"], dtype=float))
    order = by_score[_stable_order(group[by_score])]
    group = group[order]
    pos = np.asarray(res["pos"], dtype=np.int64)[order]
    neg = np.asarray(res["neg"], dtype=np.int64)[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    running = np.cumsum(neg)
    before_group = np.repeat(running[starts] - neg[starts], np.diff(np.r_[starts, len(group)]))
    below = running - neg - before_group
    twice = np.add.reduceat(2 * pos * below + pos * neg, starts)
    p_total = np.add.reduceat(pos, starts)
    n_total = np.add.reduceat(neg, starts)
    out: dict[tuple[int, int, str], float] = {}
    for i, start in enumerate(starts):
        if p_total[i] and n_total[i]:
            j = order[start]
            key = (int(k[j]), int(res["w"][j]), str(names[s_index[j]]))
            out[key] = int(twice[i]) / (2 * int(p_total[i]) * int(n_total[i]))
    return out


def regression_sums(
    con: duckdb.DuckDBPyConnection,
    view: str,
    *,
    label: str,
    prediction: str,
    slice_column: str | None,
    types: dict[str, str],
    by_window: bool,
    where: str,
) -> dict[str, np.ndarray]:
    """Per window (-1 whole) and slice: rows, labelled rows, Σ|e|, Σe², Σ(y - ȳ)²."""
    y, p = f"CAST({quote(label)} AS DOUBLE)", f"CAST({quote(prediction)} AS DOUBLE)"
    s = (
        "''"
        if slice_column is None
        else f"coalesce({text_sql(slice_column, types[slice_column])}, '(missing)')"
    )
    inner = f"SELECT {W if by_window else WHOLE} AS w, {s} AS s, {y} AS y, {p} AS p FROM {view}"
    labelled = "y IS NOT NULL AND p IS NOT NULL AND NOT isnan(y) AND NOT isnan(p)"
    groups = "(w, s), (s)" if by_window else "(w, s)"
    sql = (
        f"SELECT coalesce(w, {WHOLE}) AS w, s, count(*) AS n, "
        f"count(*) FILTER (WHERE {labelled}) AS nl, "
        f"sum(abs(y - p)) FILTER (WHERE {labelled}) AS sae, "
        f"sum((y - p) * (y - p)) FILTER (WHERE {labelled}) AS sse, "
        f"var_pop(y) FILTER (WHERE {labelled}) AS var "
        f"FROM ({inner}) GROUP BY GROUPING SETS ({groups}) ORDER BY w, s"
    )
    return run(con, sql, where)


def _norm(text_expr: str) -> str:
    """Labels and predictions compared as numbers when they are numbers (1 = 1.0 = true)."""
    return (
        f"coalesce(CAST(try_cast({text_expr} AS DOUBLE) AS VARCHAR), "
        f"CASE lower({text_expr}) WHEN 'true' THEN '1.0' WHEN 'false' THEN '0.0' "
        f"ELSE {text_expr} END)"
    )


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def positive_class(
    con: duckdb.DuckDBPyConnection, label: str, duck_type: str, where: str
) -> str | None:
    """The positive class as :func:`_norm` spells it: 1 (true, yes) when labels are binary."""
    if duck_type == "BOOLEAN":
        return "1.0"
    labels = {v.lower() for v in distinct_labels(con, label, duck_type, where)}
    if is_numeric(duck_type):
        # 0/1 (or one of them): binary; three or more numbers are classes, none positive.
        return "1.0" if {float(v) for v in labels} <= {0.0, 1.0} else None
    for pair, positive in ((("no", "yes"), "yes"), (("0", "1"), "1.0"), (("false", "true"), "1.0")):
        if labels <= set(pair):
            return positive
    return None
