"""``build_report``: one monitor computed end to end, from files to a :class:`MonitorReport`.

The order is: find the files, read their columns, settle the roles, set up the views
(:mod:`mltop.core.monitor.aggregate`), choose the windows, then per feature pull its value
counts once (every window and the whole log in one query) and derive drift, quality and
distributions from them; outcomes per window, version and group give prediction quality and
fairness. Anything that stops the report is a :class:`MonitorError` of one line naming the
file; anything that only leaves a hole (an empty window, a feature with no values) is a note
on the section and a line in ``problems``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mltop.core.monitor import aggregate as agg
from mltop.core.monitor import drift as dr
from mltop.core.monitor.config import MonitorConfig, check, infer_roles
from mltop.core.monitor.drift import Counts
from mltop.core.monitor.fairness import fairness
from mltop.core.monitor.performance import classification, groups, regression
from mltop.core.monitor.quality import column_quality, schema_changes
from mltop.core.monitor.results import (
    ColumnQuality,
    DatasetDrift,
    Distribution,
    Fairness,
    FeatureDrift,
    MonitorReport,
    Performance,
    Roles,
    SchemaChange,
    Section,
)
from mltop.core.monitor.source import (
    FileSet,
    MonitorError,
    connect,
    describe,
    file_schemas,
    find_files,
    holds_values,
    is_float,
    is_numeric,
)
from mltop.core.monitor.windows import choose, iso, parse_range, timestamp_sql

__all__ = ["MonitorError", "build_report"]

Progress = Callable[[str], None]


def build_report(config: MonitorConfig, progress: Progress | None = None) -> MonitorReport:
    """Compute the monitor ``config`` describes; raises :class:`MonitorError` (one line)."""
    say = progress or (lambda _text: None)
    check(config)
    log = find_files(config.log)
    con = connect()
    try:
        return _build(con, config, log, say)
    finally:
        con.close()


def _build(
    con: agg.Connection, config: MonitorConfig, log: FileSet, say: Progress
) -> MonitorReport:
    where = log.spec
    log_types = describe(con, log)
    roles = infer_roles(config, log_types, where)
    con.execute(f"CREATE VIEW mon_log AS SELECT * FROM {log.reader()}")
    ts_sql = timestamp_sql(roles.timestamp, log_types[roles.timestamp], where)
    problems: list[str] = []

    ref_window = (
        parse_range(config.reference_window, config.origin or where)
        if config.reference_window
        else None
    )
    if ref_window is None:
        assert config.reference is not None
        ref_files = find_files(config.reference)
        ref_types = describe(con, ref_files)
        ref_where = ref_files.spec
        con.execute(f"CREATE VIEW mon_ref AS SELECT * FROM {ref_files.reader()}")
        if not any(f in ref_types for f in roles.features):
            raise MonitorError(f"{ref_where}: none of the log's features is a column here")
        in_cur = "TRUE"
        reference_text = ref_files.spec
    else:
        lo, hi = ref_window
        ref_types = dict(log_types)
        ref_where = f"{where} ({iso(lo)}..{iso(hi)})"
        con.execute(
            f"CREATE VIEW mon_ref AS SELECT * FROM mon_log "
            f"WHERE {ts_sql} >= {lo} AND {ts_sql} < {hi}"
        )
        # What came after the reference is compared with it; rows before it are not.
        in_cur = f"{agg.TS} >= {hi}"
        reference_text = f"{where} from {iso(lo)} to {iso(hi)}"

    _check_label(con, roles, log_types, where)
    after = f"t >= {ref_window[1]}" if ref_window else "TRUE"
    before = f"t < {ref_window[0]}" if ref_window else "FALSE"
    span = agg.run(
        con,
        f"SELECT count(*) AS n, count(t) AS nt, min(t) FILTER (WHERE {after}) AS lo, "
        f"max(t) FILTER (WHERE {after}) AS hi, count(*) FILTER (WHERE {before}) AS early "
        f"FROM (SELECT {ts_sql} AS t FROM mon_log)",
        where,
    )
    n_all, n_ts = int(span["n"][0]), int(span["nt"][0])
    if n_all == 0:
        raise MonitorError(f"{where}: the log has no rows")
    if n_ts == 0:
        raise MonitorError(f"{where}: column {roles.timestamp!r} holds no readable times")
    if n_ts < n_all:
        problems.append(
            f"{where}: {n_all - n_ts:,} rows without a readable time in {roles.timestamp!r} "
            "were left out"
        )
    if ref_window and int(span["early"][0]):
        problems.append(
            f"{where}: {int(span['early'][0]):,} rows before the reference window were left out"
        )
    if np.ma.is_masked(span["lo"][0]) or span["lo"][0] is None:
        raise MonitorError(f"{where}: no rows after the reference window to compare with it")
    windows = choose(config.window, int(span["lo"][0]), int(span["hi"][0]), where)
    con.execute(
        f"CREATE VIEW mon_cur AS SELECT * FROM (SELECT *, {ts_sql} AS {agg.TS}, "
        f"{windows.index_sql(ts_sql)} AS {agg.W} FROM mon_log) "
        f"WHERE {agg.TS} IS NOT NULL AND {in_cur}"
    )

    say("counting rows")
    columns = [c for c in log_types if c != roles.timestamp]
    # A feature's present values are the sum of its value counts (read below anyway), unless
    # those count differently from "not null, not NaN": NaN as a category, JSON nulls.
    counted = [
        c
        for c in columns
        if c not in roles.features
        or (roles.kind(c) != "numerical" and (is_float(log_types[c]) or log_types[c] == "JSON"))
    ]
    rows, present = agg.present_counts(
        con, "mon_cur", log_types, counted, by_window=True, where=where
    )
    if agg.WHOLE not in rows or rows[agg.WHOLE] == 0:
        raise MonitorError(f"{where}: no rows to compare with the reference")
    ref_rows, _ = agg.present_counts(
        con, "mon_ref", ref_types, [], by_window=False, where=ref_where
    )
    n_ref = ref_rows.get(agg.WHOLE, 0)
    if n_ref == 0:
        raise MonitorError(f"{ref_where}: the reference has no rows")

    tests = ("default", *config.extra_tests)
    drift: dict[int, dict[str, dict[str, FeatureDrift]]] = {}
    quality: dict[int, dict[str, ColumnQuality]] = {}
    dists: dict[int, dict[str, Distribution]] = {}
    notes: dict[int, list[str]] = {}
    say("counting categories")
    categories = agg.categorical_counts(
        con,
        "mon_cur",
        [(f, log_types[f]) for f in roles.features if roles.kind(f) != "numerical"],
        where=where,
    )
    for feature in roles.features:
        kind = roles.kind(feature)
        if feature in categories:
            cur = categories[feature]
        else:
            say(f"feature {feature}")
            cur = agg.feature_counts(
                con, "mon_cur", feature, log_types[feature], kind, by_window=True, where=where
            )
        ref = Counts.empty(kind == "numerical")
        if feature not in ref_types:
            problems.append(
                f"{ref_where}: no column {feature!r} (a feature of the log); not tested"
            )
        else:
            ref = agg.feature_counts(
                con, "mon_ref", feature, ref_types[feature], kind, by_window=False, where=ref_where
            ).get(agg.WHOLE, ref)
        if ref.n == 0 and feature in ref_types:
            problems.append(
                f"{ref_where}: feature {feature!r} has no values in the reference; not tested"
            )
        if agg.WHOLE not in cur:
            problems.append(f"{where}: feature {feature!r} has no values in the log; not tested")
        for w in [agg.WHOLE, *range(windows.count)]:
            c = cur.get(w, Counts.empty(kind == "numerical"))
            for test_set in tests:
                result = _feature_drift(feature, kind, test_set, ref, c)
                if result is not None:
                    drift.setdefault(w, {}).setdefault(test_set, {})[feature] = result
            if ref.n and rows.get(w, 0) and c.n == 0 and agg.WHOLE in cur:
                notes.setdefault(w, []).append(f"{feature!r} has no values in this window")
            dists.setdefault(w, {})
            if ref.n and c.n:
                dists[w][feature] = _distribution(feature, kind, ref, cur[agg.WHOLE], c)
            n_present = present.get(w, {}).get(feature, 0) if feature in counted else c.n
            quality.setdefault(w, {})[feature] = column_quality(
                feature, rows.get(w, 0), n_present, kind, c, ref
            )

    for w in [agg.WHOLE, *range(windows.count)]:
        for column in columns:
            if column not in roles.features:
                quality.setdefault(w, {})[column] = column_quality(
                    column, rows.get(w, 0), present.get(w, {}).get(column, 0), None, None, None
                )

    say("prediction quality")
    perf, perf_by_version, fair, ref_perf = _outcomes(
        con, roles, log_types, ref_types, config, where, ref_where
    )
    versions: dict[int, dict[str, int]] = {}
    if roles.version and perf_by_version:
        # Every row of a version is in its quality's count, labelled or not: no second scan.
        versions = {w: {s: p.n_rows for s, p in by.items()} for w, by in perf_by_version.items()}
    elif roles.version:
        versions = agg.slice_counts(con, roles.version, log_types, where)

    def section(w: int) -> Section:
        start, end = (
            (iso(int(span["lo"][0])), iso(int(span["hi"][0]))) if w < 0 else windows.bounds(w)
        )
        n = rows.get(w, 0)
        by_test = drift.get(w, {})
        default = by_test.get("default", {})
        section_notes = list(notes.get(w, []))
        if n == 0:
            section_notes.insert(0, "no rows in this window")
        return Section(
            index=w,
            start=start,
            end=end,
            n_rows=n,
            drift=default,
            dataset_drift=_dataset(default),
            quality=quality.get(w, {}),
            performance=perf.get(w) if n else None,
            performance_by_version=perf_by_version.get(w, {}),
            fairness=fair.get(w, {}),
            rows_by_version=versions.get(w, {}),
            extra_drift={t: by_test.get(t, {}) for t in config.extra_tests},
            distributions=dists.get(w, {}),
            notes=tuple(section_notes),
        )

    sections = tuple(section(w) for w in range(windows.count))
    empty = [s.start for s in sections if s.n_rows == 0]
    if empty:
        problems.append(
            f"{where}: {len(empty)} {windows.unit} window{'s' * (len(empty) > 1)} without rows "
            f"(first {empty[0]})"
        )
    changes = schema_changes(ref_types, log_types, "log", ignore=_not_features(roles, log_types))
    changes.extend(_file_changes(con, log))
    return MonitorReport(
        log=where,
        reference=reference_text,
        window=windows.unit,
        roles=roles,
        reference_rows=n_ref,
        overall=section(agg.WHOLE),
        windows=sections,
        reference_performance=ref_perf,
        schema_changes=tuple(changes),
        problems=tuple(problems),
    )


def _file_changes(con: agg.Connection, log: FileSet) -> list[SchemaChange]:
    """Columns appearing, disappearing or changing type from the log's first file to each
    other one; for CSV and JSONL a column without values in either file keeps its type."""
    per_file = file_schemas(con, log)
    if not per_file:
        return []
    first_path, first = next(iter(per_file.items()))
    out = []
    for path, types in per_file.items():
        for change in schema_changes(first, types, path):
            if change.change == "type" and not (
                holds_values(con, log, first_path, change.column)
                and holds_values(con, log, path, change.column)
            ):
                continue
            out.append(change)
    return out


def _not_features(roles: Roles, types: dict[str, str]) -> list[str]:
    """Columns the reference need not have: everything but the features and the outcomes."""
    keep = {*roles.features, roles.label, roles.prediction, roles.score}
    return [c for c in types if c not in keep]


def _check_label(con: agg.Connection, roles: Roles, types: dict[str, str], where: str) -> None:
    if roles.label is None or is_numeric(types[roles.label]) or types[roles.label] == "BOOLEAN":
        return
    numbers, texts, sample = agg.label_kinds(con, "mon_log", roles.label, types[roles.label], where)
    if numbers and texts:
        shown = ", ".join(repr(s) for s in sample)
        raise MonitorError(
            f"{where}: label column {roles.label!r} mixes numbers and text ({numbers:,} numbers, "
            f"{texts:,} texts, e.g. {shown}); labels must be of one type"
        )


def _feature_drift(
    feature: str, kind: str, test_set: str, ref: Counts, cur: Counts
) -> FeatureDrift | None:
    if ref.n == 0 or cur.n == 0 or (test_set == "ks" and kind == "categorical"):
        return None  # K-S compares numbers: on request it runs on numerical features only
    test_id = (
        dr.default_test(kind, ref.n, dr.n_unique(ref, cur)) if test_set == "default" else test_set
    )
    test = dr.TESTS[test_id]
    statistic = dr.run_test(test_id, kind, ref, cur)
    verdict = None if np.isnan(statistic) else test.drifted(statistic)
    return FeatureDrift(
        column=feature,
        kind=kind,
        test=test_id,
        test_name=test.name,
        statistic=None if np.isnan(statistic) else statistic,
        threshold=test.threshold,
        drifted=verdict,
        n_reference=ref.n,
        n_current=cur.n,
    )


def _dataset(results: dict[str, FeatureDrift]) -> DatasetDrift:
    tested = [r for r in results.values() if r.drifted is not None]
    drifted = sum(1 for r in tested if r.drifted)
    share = drifted / len(tested) if tested else None
    return DatasetDrift(
        drifted_count=drifted,
        tested_count=len(tested),
        share=share,
        threshold=dr.DRIFT_SHARE,
        dataset_drift=None if share is None else share >= dr.DRIFT_SHARE,
    )


_MAX_BINS = 20


def _distribution(feature: str, kind: str, ref: Counts, whole: Counts, cur: Counts) -> Distribution:
    """Reference and current counts on bins shared by every window (from ref + whole log)."""
    if kind == "numerical":
        lo = float(min(ref.values[0], whole.values[0]))
        hi = float(max(ref.values[-1], whole.values[-1]))
        bins = min(_MAX_BINS, int(np.ceil(np.log2(ref.n + whole.n) + 1)))
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
        r = np.histogram(ref.values.astype(float), edges, weights=ref.counts)[0]
        c = np.histogram(cur.values.astype(float), edges, weights=cur.counts)[0]
        labels = tuple(f"{edges[i]:.4g}..{edges[i + 1]:.4g}" for i in range(bins))
        return Distribution(
            feature,
            kind,
            labels,
            tuple(map(float, edges)),
            tuple(int(x) for x in r),
            tuple(int(x) for x in c),
        )
    totals: dict[str, int] = {}
    for counts in (ref, whole):
        for v, n in zip(counts.values.tolist(), counts.counts.tolist(), strict=True):
            totals[str(v)] = totals.get(str(v), 0) + int(n)
    top = sorted(totals, key=lambda k: (-totals[k], k))[:_MAX_BINS]
    ref_map = {
        str(v): int(n) for v, n in zip(ref.values.tolist(), ref.counts.tolist(), strict=True)
    }
    cur_map = {
        str(v): int(n) for v, n in zip(cur.values.tolist(), cur.counts.tolist(), strict=True)
    }
    labels = list(top)
    r_counts = [ref_map.get(k, 0) for k in top]
    c_counts = [cur_map.get(k, 0) for k in top]
    if len(totals) > len(top):
        labels.append("(other)")
        r_counts.append(ref.n - sum(r_counts))
        c_counts.append(cur.n - sum(c_counts))
    return Distribution(feature, kind, tuple(labels), (), tuple(r_counts), tuple(c_counts))


PerformanceParts = tuple[
    dict[int, Performance],
    dict[int, dict[str, Performance]],
    dict[int, dict[str, Fairness]],
    Performance | None,
]


def _outcomes(
    con: agg.Connection,
    roles: Roles,
    log_types: dict[str, str],
    ref_types: dict[str, str],
    config: MonitorConfig,
    where: str,
    ref_where: str,
) -> PerformanceParts:
    """Performance per window (and per version in each), fairness per attribute, reference's."""
    perf: dict[int, Performance] = {}
    by_version: dict[int, dict[str, Performance]] = {}
    fair: dict[int, dict[str, Fairness]] = {}
    if roles.label is None or roles.prediction is None:
        return perf, by_version, fair, None
    task = config.task or _task(log_types[roles.label])
    ref_perf: Performance | None = None
    ref_has = roles.label in ref_types and roles.prediction in ref_types
    if task == "regression":

        def regressions(
            view: str, types: dict[str, str], sliced: str | None, by_window: bool, at: str
        ) -> list[tuple[int, str, Performance]]:
            """MAE, RMSE and R² per window (and whole) and slice value, from DuckDB's sums."""
            assert roles.label is not None and roles.prediction is not None
            sums = agg.regression_sums(
                con,
                view,
                label=roles.label,
                prediction=roles.prediction,
                slice_column=sliced,
                types=types,
                by_window=by_window,
                where=at,
            )
            return [
                (
                    int(sums["w"][k]),
                    str(sums["s"][k]),
                    regression(
                        int(sums["n"][k]),
                        int(sums["nl"][k]),
                        _num(sums["sae"][k]),
                        _num(sums["sse"][k]),
                        _num(sums["var"][k]),
                    ),
                )
                for k in range(len(sums["w"]))
            ]

        for w, _s, p in regressions("mon_cur", log_types, None, True, where):
            perf[w] = p
        if roles.version:
            for w, s, p in regressions("mon_cur", log_types, roles.version, True, where):
                by_version.setdefault(w, {})[s] = p
        if ref_has:
            ref_perf = regressions("mon_ref", ref_types, None, False, ref_where)[0][2]
        return perf, by_version, fair, ref_perf

    positive = agg.positive_class(con, roles.label, log_types[roles.label], where)
    score = roles.score

    def outcomes(
        view: str, types: dict[str, str], slices: list[str | None], by_window: bool, w_where: str
    ) -> agg.Outcomes:
        return agg.outcome_counts(
            con,
            view,
            label=roles.label,
            prediction=roles.prediction,
            score=score if score in types else None,
            positive=positive,
            types=types,
            slices=slices,
            by_window=by_window,
            where=w_where,
            class_scores=dict(roles.class_scores) if all_in(types) else None,
        )

    def all_in(types: dict[str, str]) -> bool:
        return all(column in types for _, column in roles.class_scores)

    def per_class(
        class_auc: dict[tuple[int, str], dict[str, float]], key: tuple[int, str]
    ) -> dict[str, float | None] | None:
        """Every class given a score column, with its AUC where it has one."""
        if not roles.class_scores:
            return None
        found = class_auc.get(key, {})
        return {name: found.get(name) for name, _ in roles.class_scores}

    slices: list[str | None] = [None, *([roles.version] if roles.version else []), *roles.sensitive]
    results = outcomes("mon_cur", log_types, slices, True, where)
    counts, auc, class_auc = results[0]
    for (w, s), rows in groups(counts).items():
        perf[w] = classification(rows, auc.get((w, s)), per_class(class_auc, (w, s)))
    if roles.version:
        counts, auc, class_auc = results[1]
        for (w, s), rows in groups(counts).items():
            by_version.setdefault(w, {})[s] = classification(
                rows, auc.get((w, s)), per_class(class_auc, (w, s))
            )
    for attribute, (counts, auc, class_auc) in zip(
        roles.sensitive, results[1 + bool(roles.version) :], strict=True
    ):
        split: dict[int, dict[str, dict[str, np.ndarray]]] = {}
        for (w, s), rows in groups(counts).items():
            split.setdefault(w, {})[s] = rows
        for w, by_group in split.items():
            group_auc = {s: a for (aw, s), a in auc.items() if aw == w}
            group_class_auc = {s: per_class(class_auc, (w, s)) or {} for s in by_group}
            fair.setdefault(w, {})[attribute] = fairness(
                attribute, by_group, group_auc, group_class_auc
            )
    if ref_has:
        counts, auc, class_auc = outcomes("mon_ref", ref_types, [None], False, ref_where)[0]
        ref_rows = groups(counts)
        if ref_rows:
            key, rows = next(iter(ref_rows.items()))
            ref_perf = classification(
                rows, auc.get(key), per_class(class_auc, key) if all_in(ref_types) else None
            )
    return perf, by_version, fair, ref_perf


def _task(label_type: str) -> str:
    return (
        "regression"
        if label_type in ("DOUBLE", "FLOAT", "REAL") or label_type.startswith("DECIMAL")
        else "classification"
    )


def _num(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if np.isnan(out) else out
