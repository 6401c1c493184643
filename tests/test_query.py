"""The runs filter language, checked by running compiled filters against a real in-memory store."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltop.core.entities import RunRecord, Status
from mltop.core.runs.query import (
    All,
    And,
    Compare,
    Field,
    Literal,
    Not,
    Or,
    Present,
    QueryError,
    compile_query,
    format_error,
    parse,
    to_sql,
    unknown_metric_warnings,
)
from mltop.core.store import RunQuery, Store, open_memory_store


def _ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


NOW = _ts(2026, 11, 6, 14, 0)
INJECTED_NAME = "x' OR 1=1 --"
INJECTED_KEY = "a'; DROP TABLE runs; --"

RUNS = [
    RunRecord(
        id="r1",
        source_kind="mlflow-sqlite",
        location="/mlruns/1/r1",
        name="sgd-baseline",
        status=Status.FINISHED,
        experiment_id="e1",
        native_id="0a1b2c",
        start_time=_ts(2026, 11, 2),
        end_time=_ts(2026, 11, 2) + 600,
        git_commit="abc123",
        host="gpu1",
    ),
    RunRecord(
        id="r2",
        source_kind="mlflow-sqlite",
        location="/mlruns/1/r2",
        name="sgd-tuned",
        status=Status.RUNNING,
        experiment_id="e1",
        native_id="ffee00",
        start_time=_ts(2026, 11, 5),
        updated=_ts(2026, 11, 5) + 7200,
        host="gpu2",
    ),
    RunRecord(
        id="r3",
        source_kind="dvc",
        location="/repo/dvc/r3",
        name="tree",
        status=Status.FAILED,
        experiment_id="e2",
        start_time=_ts(2026, 10, 1),
        end_time=_ts(2026, 10, 1) + 30,
    ),
    RunRecord(
        id="r4",
        source_kind="tensorboard",
        location="/tb/r4",
        name=INJECTED_NAME,
        status=Status.KILLED,
    ),
    RunRecord(
        id="r5",
        source_kind="jsonl",
        location="/runs/r5",
        name="mlp 学习",
        status=Status.FINISHED,
        experiment_id="e1",
        start_time=_ts(2026, 11, 6, 12),
        end_time=_ts(2026, 11, 6, 12) + 5400,
    ),
]
PARAMS = [
    ("r1", "lr", "0.01"),
    ("r1", "model", "sgd"),
    ("r1", "epochs", 10),
    ("r1", "my param", "x"),
    ("r2", "lr", "0.001"),
    ("r2", "model", "sgd"),
    ("r2", INJECTED_KEY, "1"),
    ("r3", "lr", "auto"),
    ("r3", "model", "tree"),
    ("r3", "n_estimators", 100),
    ("r4", "lr", "1e-2"),
    ("r5", "lr", 0.1),
    ("r5", "model", "mlp"),
]
TAGS = [
    ("r1", "mlflow.runName", "sgd-baseline"),
    ("r1", "mlflow.source.git.commit", "abc123"),
    ("r1", "stage", "prod"),
    ("r1", "version", "1.0"),
    ("r2", "stage", "dev"),
    ("r3", "team", "core"),
    ("r5", "stage", "prod"),
    ("r5", "note", 'say "hi"\n'),
]
HISTORIES = {
    ("r1", "acc"): [0.5, 0.8, 0.91],
    ("r1", "val/roc_auc"): [0.7, 0.75],
    ("r1", "train.loss"): [1.0, 0.3, 0.2],
    ("r1", "val loss"): [0.4],
    ("r2", "acc"): [0.6, 0.95, 0.93],
    ("r2", "train.loss"): [0.9, 0.1],
    ("r3", "acc"): [0.7],
    ("r3", "rmse"): [0.8],
    ("r3", "a"): [1.0, 2.0],
    ("r3", "a.min"): [5.0, 3.0],
    ("r5", "acc"): [0.2, math.nan],
}
ALL = {r.name for r in RUNS}


@pytest.fixture(scope="module")
def store() -> Store:
    store = open_memory_store()
    store.put_experiments(
        [
            ("e1", "mlflow-sqlite", "/mlruns", "1", "mnist"),
            ("e2", "dvc", "/repo", None, "iris"),
        ]
    )
    with store.transaction():
        store.put_runs("/fixture", RUNS, params=PARAMS, tags=TAGS)
    rows = [
        (run_id, key, step, NOW, value)
        for (run_id, key), values in HISTORIES.items()
        for step, value in enumerate(values)
    ]
    columns = list(zip(*rows, strict=True))
    store.add_points(
        pa.table(
            {
                "run_id": list(columns[0]),
                "key": list(columns[1]),
                "step": pa.array(columns[2], pa.int64()),
                "ts": pa.array(columns[3], pa.float64()),
                "value": pa.array(columns[4], pa.float64()),
            }
        )
    )
    store.refresh_summaries([r.id for r in RUNS])
    yield store
    store.close()


def names(store: Store, text: str) -> set[str]:
    return {run.name for run in store.runs(compile_query(text, now=NOW))}


def error(text: str) -> QueryError:
    with pytest.raises(QueryError) as info:
        compile_query(text, now=NOW)
    return info.value


# -- structure -----------------------------------------------------------------------------------


def test_empty_filter_is_every_run(store: Store) -> None:
    assert compile_query("") == RunQuery()
    assert compile_query("  \t ") == RunQuery()
    assert parse("") == All()
    assert store.count_runs(compile_query("")) == len(RUNS)


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    a, b, c = (Field("attribute", n, pos=p) for n, p in (("name", 0), ("host", 0), ("commit", 0)))
    tree = parse("name or host and not commit")
    assert isinstance(tree, Or)
    assert isinstance(tree.items[0], Present)
    assert tree.items[0].field.name == a.name
    second = tree.items[1]
    assert isinstance(second, And)
    assert isinstance(second.items[0], Present)
    assert second.items[0].field.name == b.name
    assert isinstance(second.items[1], Not)
    assert second.items[1].child.field.name == c.name  # type: ignore[union-attr]


def test_precedence_decides_which_runs_match(store: Store) -> None:
    # or(tree, and(sgd, running)) versus and(or(tree, sgd), running)
    assert names(store, "name = tree or params.model = sgd and status = running") == {
        "tree",
        "sgd-tuned",
    }
    assert names(store, "(name = tree or params.model = sgd) and status = running") == {"sgd-tuned"}
    assert names(store, "not status = finished and host is not null") == {"sgd-tuned"}
    assert names(store, "not (status = finished and host is not null)") == ALL - {"sgd-baseline"}


def test_and_or_chains_stay_flat() -> None:
    tree = parse("name = a and name = b and name = c or name = d or name = e")
    assert isinstance(tree, Or)
    assert len(tree.items) == 3
    assert isinstance(tree.items[0], And)
    assert len(tree.items[0].items) == 3


def test_keywords_are_case_insensitive(store: Store) -> None:
    assert names(store, "params.model IN ('sgd') AND NOT status = RUNNING") == {"sgd-baseline"}
    assert names(store, "tags.team Is Not Null Or name LiKe 'mlp%'") == {"tree", "mlp 学习"}


def test_to_sql_of_parse_is_compile_query() -> None:
    text = "metrics.acc >= 0.9 and (params.model = 'rf' or params.lr < 1e-3)"
    assert to_sql(parse(text)) == compile_query(text)
    hand_built = Compare(Field("metric", "acc", "max"), ">", Literal("0.9", 0.9))
    assert to_sql(hand_built).params == ("acc", 0.9)


# -- operators -----------------------------------------------------------------------------------


OPERATOR_FILTERS = [
    ("name = tree", {"tree"}),
    ("name == 'tree'", {"tree"}),
    ("name != tree", ALL - {"tree"}),
    ("name <> tree", ALL - {"tree"}),
    ("metrics.acc < 0.8", {"tree"}),
    ("metrics.acc <= 0.7", {"tree"}),
    ("metrics.acc > 0.91", {"sgd-tuned"}),
    ("metrics.acc >= 0.91", {"sgd-baseline", "sgd-tuned"}),
    ("name ~ 'sgd.*'", {"sgd-baseline", "sgd-tuned"}),
    ("name !~ 'sgd'", ALL - {"sgd-baseline", "sgd-tuned"}),
    ("name rlike '^tr'", {"tree"}),
    ("name in (tree, 'sgd-tuned', nothing)", {"tree", "sgd-tuned"}),
    ("name not in (tree, 'sgd-tuned')", ALL - {"tree", "sgd-tuned"}),
    ("name like 'sgd-%'", {"sgd-baseline", "sgd-tuned"}),
    ("name like 'SGD-%'", set()),
    ("name ilike 'SGD-%'", {"sgd-baseline", "sgd-tuned"}),
    ("name not like 'sgd-%'", ALL - {"sgd-baseline", "sgd-tuned"}),
    ("name not ilike 'SGD-%'", ALL - {"sgd-baseline", "sgd-tuned"}),
    ("commit is null", ALL - {"sgd-baseline"}),
    ("commit is not null", {"sgd-baseline"}),
    ("commit", {"sgd-baseline"}),
    ("not commit", ALL - {"sgd-baseline"}),
    ("tags.stage", {"sgd-baseline", "sgd-tuned", "mlp 学习"}),
    ("not tags.stage", {"tree", INJECTED_NAME}),
    ("tags.stage is null", {"tree", INJECTED_NAME}),
    ("params.n_estimators", {"tree"}),
    ("metrics.rmse", {"tree"}),
    ("metrics.rmse is null", ALL - {"tree"}),
]


def test_not_is_the_exact_complement_even_where_values_are_missing(store: Store) -> None:
    for text in [
        "commit = abc123",
        "commit != abc123",
        "params.lr != 0.01",
        "tags.stage != prod",
        "metrics.acc > 0.9",
        "duration > 5m",
        "experiment ~ 'mni'",
        "params.lr not in (0.01, auto)",
    ]:
        assert names(store, f"not ({text})") == ALL - names(store, text), text


def test_comparisons_need_the_key_like_mlflow(store: Store) -> None:
    # Runs without a "stage" tag match neither the test nor its != version.
    assert names(store, "tags.stage = prod") == {"sgd-baseline", "mlp 学习"}
    assert names(store, "tags.stage != prod") == {"sgd-tuned"}
    assert names(store, "commit != zzz") == {"sgd-baseline"}


# -- params, tags, metrics -----------------------------------------------------------------------


PARAM_FILTERS = [
    # A number literal compares the parsed number (1e-2 == 0.01) or the same text.
    ("params.lr = 0.01", {"sgd-baseline", INJECTED_NAME}),
    # MLflow quotes param values: a string compares text only.
    ("params.lr = '0.01'", {"sgd-baseline"}),
    ('params.lr = "1e-2"', {INJECTED_NAME}),
    ("params.lr < 0.005", {"sgd-tuned"}),
    ("params.lr > 0", {"sgd-baseline", "sgd-tuned", INJECTED_NAME, "mlp 学习"}),
    ("params.lr = auto", {"tree"}),
    ("params.lr in (auto, 0.1)", {"tree", "mlp 学习"}),
    ("params.epochs = 10", {"sgd-baseline"}),
    ("params.epochs >= 10.0", {"sgd-baseline"}),
    ("params.model ~ '^s'", {"sgd-baseline", "sgd-tuned"}),
    ("param.model = tree", {"tree"}),
    ("params.`my param` = x", {"sgd-baseline"}),
    ('params."my param" = "x"', {"sgd-baseline"}),
]


TAG_FILTERS = [
    ("tags.mlflow.source.git.commit = abc123", {"sgd-baseline"}),
    ("tags.mlflow.runName = 'sgd-baseline'", {"sgd-baseline"}),
    ("tags.\"mlflow.runName\" = 'sgd-baseline'", {"sgd-baseline"}),
    ("tag.stage = dev", {"sgd-tuned"}),
    ("tags.version = 1", {"sgd-baseline"}),  # "1.0" read as a number
    ("tags.version = '1'", set()),  # text compares text
    ("tags.version > 0.5", {"sgd-baseline"}),
    ("tags.note = 'say \"hi\"\\n'", {"mlp 学习"}),
    ('tags.note = "say \\"hi\\"\\n"', {"mlp 学习"}),
    ("tags.note ~ 'hi'", {"mlp 学习"}),
]


METRIC_FILTERS = [
    ("metrics.acc > 0.9", {"sgd-baseline", "sgd-tuned"}),  # the NaN last value is no match
    ("metrics.acc = nan", {"mlp 学习"}),
    ("metric.acc.max > 0.94", {"sgd-tuned"}),
    ("metrics.acc.min < 0.55", {"sgd-baseline", "mlp 学习"}),
    ("metrics.acc.last = 0.93", {"sgd-tuned"}),
    ("metrics.acc.count = 3", {"sgd-baseline", "sgd-tuned"}),
    ("metrics.acc.first_step = 0 and metrics.acc.last_step = 2", {"sgd-baseline", "sgd-tuned"}),
    ("metrics.acc.max_step = 1", {"sgd-tuned"}),
    ("metrics.val/roc_auc >= 0.75", {"sgd-baseline"}),
    ("metrics.train.loss < 0.15", {"sgd-tuned"}),
    ("metrics.train.loss.max >= 1", {"sgd-baseline"}),
    ('metrics."val loss" = 0.4', {"sgd-baseline"}),
    ("metrics.`val loss` = '0.4'", {"sgd-baseline"}),
    # "a.min" the aggregate of metric a, versus the literal key "a.min".
    ("metrics.a.min = 1", {"tree"}),
    ('metrics."a.min" = 3', {"tree"}),
    ('metrics."a.min".max = 5', {"tree"}),
    ("metrics.a.min = 3", set()),
    ("metrics.acc in (0.91, 0.7)", {"sgd-baseline", "tree"}),
    ("metrics.acc not in (0.91, 0.7)", {"sgd-tuned", "mlp 学习"}),
]


# -- attributes ----------------------------------------------------------------------------------


ATTRIBUTE_FILTERS = [
    ("status = running", {"sgd-tuned"}),
    ("status = 'Running'", {"sgd-tuned"}),
    ("status != FINISHED", {"sgd-tuned", "tree", INJECTED_NAME}),
    ("status in (failed, killed)", {"tree", INJECTED_NAME}),
    ("status ~ 'fin|fail'", {"sgd-baseline", "tree", "mlp 学习"}),
    ("status like 'run%'", {"sgd-tuned"}),
    ("experiment = mnist", {"sgd-baseline", "sgd-tuned", "mlp 学习"}),
    ("experiment is null", {INJECTED_NAME}),
    ("source = dvc", {"tree"}),
    ("source ~ '^mlflow'", {"sgd-baseline", "sgd-tuned"}),
    ("host in (gpu1, gpu2)", {"sgd-baseline", "sgd-tuned"}),
    ("id = r3", {"tree"}),
    ("run_id = 'ffee00'", {"sgd-tuned"}),
    ("location ~ '^/mlruns/'", {"sgd-baseline", "sgd-tuned"}),
    ("start > 2026-11-01", {"sgd-baseline", "sgd-tuned", "mlp 学习"}),
    ("start < '2026-10-15T00:00:00Z'", {"tree"}),
    ("start >= '2026-11-05 00:00:00+00:00'", {"sgd-tuned", "mlp 学习"}),
    ("start > -3h", {"mlp 学习"}),
    ("start > now-2d", {"sgd-tuned", "mlp 学习"}),
    ("start > 'now - 2d'", {"sgd-tuned", "mlp 学习"}),
    (f"start = {_ts(2026, 11, 2):.0f}", {"sgd-baseline"}),
    ("start is null", {INJECTED_NAME}),
    ("duration > 5m", {"sgd-baseline", "sgd-tuned", "mlp 学习"}),
    ("duration < 1h30m", {"sgd-baseline", "tree"}),
    ("duration <= 1h30m", {"sgd-baseline", "tree", "mlp 学习"}),
    ("duration >= 2h", {"sgd-tuned"}),
    ("duration = 30", {"tree"}),
    ("duration < 0.5m", set()),
    ("end is null", {"sgd-tuned", INJECTED_NAME}),
]


MLFLOW_EXAMPLE_FILTERS = [
    # The examples of MLflow's search documentation, as written.
    ('metrics.rmse < 1 and params.model = "tree"', {"tree"}),
    ("tags.\"mlflow.runName\" = 'sgd-baseline'", {"sgd-baseline"}),
    ('attributes.status = "FINISHED"', {"sgd-baseline", "mlp 学习"}),
    ("params.lr LIKE '0.0%'", {"sgd-baseline", "sgd-tuned"}),
    ("metrics.acc > 0.9 and params.lr = '0.01'", {"sgd-baseline"}),
    (
        'params.model = "LogisticRegression" and params.lambda = "0.001" and metrics.error <= 0.05',
        set(),
    ),
    ("attribute.run_name = 'tree'", {"tree"}),
    ("attributes.run_name ILIKE 'SGD%'", {"sgd-baseline", "sgd-tuned"}),
    ("run_name = 'tree'", {"tree"}),
    ("attributes.run_id IN ('0a1b2c', 'ffee00')", {"sgd-baseline", "sgd-tuned"}),
    ("attributes.artifact_uri IS NULL", ALL),
    (f"attributes.start_time > {_ts(2026, 11, 4) * 1000:.0f}", {"sgd-tuned", "mlp 学习"}),
    (f"attributes.created < {_ts(2026, 11, 4) * 1000:.0f}", {"sgd-baseline", "tree"}),
    ("attributes.start_time > 2026-11-04", {"sgd-tuned", "mlp 学习"}),
    ("tags.mlflow.source.git.commit = 'abc123'", {"sgd-baseline"}),
    ("metrics.`val loss` < 1 AND params.`my param` != 'y'", {"sgd-baseline"}),
]

FILTERS = {
    "operator": OPERATOR_FILTERS,
    "param": PARAM_FILTERS,
    "tag": TAG_FILTERS,
    "metric": METRIC_FILTERS,
    "attribute": ATTRIBUTE_FILTERS,
    "mlflow example": MLFLOW_EXAMPLE_FILTERS,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(text, expected, id=f"{kind}: {text}")
        for kind, cases in FILTERS.items()
        for text, expected in cases
    ],
)
def test_a_filter_selects_exactly_the_runs_listed_with_it(
    store: Store, text: str, expected: set[str]
) -> None:
    assert names(store, text) == expected


# -- quoting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("name = 'plain'", "plain"),
        ('name = "double"', "double"),
        ("name = 'it\\'s'", "it's"),
        ("name = 'it''s'", "it's"),
        ('name = "say \\"hi\\""', 'say "hi"'),
        ('name = "say ""hi"""', 'say "hi"'),
        ("name = 'a\\\\b'", "a\\b"),
        ("name = 'tab\\there\\n'", "tab\there\n"),
        ("name = 'keep \\d+'", "keep \\d+"),  # unknown escapes stay, so regexes read naturally
        ("name = ''", ""),
        ("name = '学习 (x, y)'", "学习 (x, y)"),
        ("name = `back`", "back"),
        ("name = bare-word_1", "bare-word_1"),
        ("name = 1.50", "1.50"),
    ],
)
def test_string_values(text: str, value: str) -> None:
    assert compile_query(text).params == (value,)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("params.a = 1", "a"),
        ("params.a.b.c = 1", "a.b.c"),
        ('params."a b" = 1', "a b"),
        ("params.`a = b` = 1", "a = b"),
        ("params.'x''y' = 1", "x'y"),
        ('params.a."b c".d = 1', "a.b c.d"),
        ("params.val/loss:1 = 1", "val/loss:1"),
        ("params.学习率 = 1", "学习率"),
        ('params."" = 1', ""),
    ],
)
def test_keys(text: str, key: str) -> None:
    assert compile_query(text).params[0] == key


def test_regex_values_keep_backslashes(store: Store) -> None:
    assert names(store, r"name ~ 'sgd-\w+'") == {"sgd-baseline", "sgd-tuned"}
    assert names(store, r"name ~ '^sgd-b\w*e$'") == {"sgd-baseline"}
    assert names(store, r"name ~ '\\\\'") == set()  # the regex \\ : one literal backslash


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("metrics.acc >", 13, "expected a value after '>'"),
        ("metrics.acc > and", 14, "expected a value"),
        ("stauts = running", 0, "did you mean 'status'"),
        ("name = 'abc", 7, "unterminated string"),
        ("(status = running", 17, "expected ')'"),
        ("status = running)", 16, "unmatched ')'"),
        ("metrics.acc > 'high'", 14, "compares with numbers"),
        ("name ~ '('", 7, "invalid regular expression"),
        ("name ~ '(?=lookahead)'", 7, "invalid regular expression"),
        ("name = a and", 12, "expected a field"),
        ("and name = a", 0, "expected a field"),
        ("metrics.acc 0.9", 12, "expected an operator"),
        ("name = a name = b", 9, "expected 'and', 'or'"),
        ("status = runing", 9, "did you mean RUNNING"),
        ("params = 1", 0, "expected a key"),
        ("params. = 1", 7, "expected a key"),
        ("params.a. = 1", 9, "expected a key name"),
        ("metrcs.acc > 1", 0, "did you mean metrics"),
        ("metrics.acc ~ 'x'", 12, "need text"),
        ("duration like '5%'", 9, "need text"),
        ("name = params.x", 7, "fields compare with values"),
        ("start > 2h", 8, "write -2h"),
        ("start > soon", 8, "expected a time"),
        ("duration > 5x", 11, "expected a duration"),
        ("tags.x = null", 9, "is null"),
        ("name ! 3", 5, "after '!'"),
        ("tags.x is nul", 10, "'null' or 'not null'"),
        ("tags.x not 3", 11, "'in', 'like' or 'ilike'"),
        ("name in 3", 8, "expected '('"),
        ("name in ()", 9, "expected a value"),
        ("name in (a b)", 11, "expected ',' or ')'"),
        ("()", 1, "expected a field"),
        ("not", 3, "expected a field"),
        ("attributes.status.x = 1", 11, "unknown attribute"),
        ("name = 'a' or  @@", 15, "unknown attribute"),
        ("name = 'ok' and duration > ", 27, "expected a value"),
    ],
)
def test_errors_point_at_the_column(text: str, position: int, fragment: str) -> None:
    err = error(text)
    assert err.position == position, err
    assert fragment in err.message


def test_format_error_draws_a_caret_under_the_mistake() -> None:
    text = "metrics.acc > 0.9 and stauts = running"
    err = error(text)
    assert format_error(text, err) == (
        "metrics.acc > 0.9 and stauts = running\n"
        "                      ^ unknown attribute 'stauts' (did you mean 'status' or 'start'?)"
    )
    assert str(err).endswith("(column 23)")


def test_format_error_keeps_the_caret_aligned_after_wide_characters() -> None:
    text = "name = '学习' and bogus"
    lines = format_error(text, error(text)).splitlines()
    assert lines[1].index("^") == len("name = '学习' and ") + 2


def test_nesting_is_bounded() -> None:
    assert error("(" * 500 + "name" + ")" * 500).message == "the filter is nested too deeply"
    assert "nested too deeply" in error("not " * 500 + "name").message
    assert compile_query("(" * 50 + "name = a" + ")" * 50).params == ("a",)


# -- injection -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x\' OR 1=1 --"', {INJECTED_NAME}),
        ("name = 'x'' OR 1=1 --'", {INJECTED_NAME}),
        ("name = 'x\\' OR 1=1 --'", {INJECTED_NAME}),
        ("name = \"x' OR '1'='1\"", set()),
        ('name = "\'; DROP TABLE runs; --"', set()),
        ('params."a\'; DROP TABLE runs; --" = 1', {"sgd-tuned"}),
        ("params.`a'; DROP TABLE runs; --` is not null", {"sgd-tuned"}),
        ("tags.\"x') OR TRUE OR ('\" = 1", set()),
        ('metrics."acc\' OR 1=1 --" > 0', set()),
        ('name ~ "\'.* OR TRUE --"', set()),
        ("name like \"%' OR '%' = '\"", set()),
    ],
)
def test_injection_attempts_stay_literal(store: Store, text: str, expected: set[str]) -> None:
    before = store.table_counts()
    query = compile_query(text)
    for word in ("DROP", "1=1", "OR TRUE", "--"):
        assert word not in query.where
    assert names(store, text) == expected
    assert store.table_counts() == before
    assert store.count_runs() == len(RUNS)


def test_injection_outside_quotes_is_a_syntax_error(store: Store) -> None:
    for text in [
        "name = x; DROP TABLE runs; --",
        "name = 'x' OR 1=1 --",
        "name = x) OR (1=1",
        "params.a = 1 UNION SELECT * FROM runs",
        "name in ('a'); DROP TABLE runs; --')",
    ]:
        with pytest.raises(QueryError):
            compile_query(text)
    assert store.count_runs() == len(RUNS)


_KEY_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@settings(max_examples=150, deadline=None)
@given(key=_KEY_TEXT, value=_KEY_TEXT)
def test_sql_text_does_not_depend_on_keys_or_values(key: str, value: str) -> None:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    for template in (
        "params.{k} = {v}",
        "tags.{k} ~ {v}",
        "metrics.{k}.max > 1 or name like {v}",
        "not tags.{k} and experiment in ({v}, {v})",
    ):
        value_used = "x" if "~" in template else value  # not every string is a valid regex
        query = compile_query(template.format(k=quoted(key), v=quoted(value_used)))
        plain = compile_query(template.format(k='"k"', v='"v"'))
        assert query.where == plain.where
        assert key in query.params
        assert value_used in query.params


# -- robustness ----------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=60))
def test_random_text_raises_only_query_error(text: str) -> None:
    try:
        compile_query(text)
    except QueryError as err:
        assert 0 <= err.position <= len(text)
        assert "\n" not in err.message
        assert len(format_error(text, err).splitlines()) == 2


_ALPHABET = [
    *"abc.'\"`()=!<>~, -0123456789_%^$\\*+",
    " and ",
    " or ",
    "not ",
    " in ",
    " is ",
    " null",
    " like ",
    "params.",
    "metrics.",
    "tags.",
    "name",
    "status",
    "start",
    "duration",
    ".min",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(_ALPHABET), max_size=25))
def test_near_miss_filters_raise_only_query_error(pieces: list[str]) -> None:
    text = "".join(pieces)
    try:
        compile_query(text)
    except QueryError as err:
        assert 0 <= err.position <= len(text)


_FIELDS = st.sampled_from(
    [
        "name",
        "status",
        "experiment",
        "commit",
        "start",
        "duration",
        "attributes.start_time",
        "params.lr",
        "params.model",
        'params."my param"',
        "tags.stage",
        "tags.mlflow.runName",
        "metrics.acc",
        "metrics.acc.max",
        "metrics.val/roc_auc",
        'metrics."a.min"',
    ]
)
_VALUES = st.one_of(
    st.sampled_from(["0.5", "-1", "1e-3", "10", "nan", "'0.01'", "sgd", "'x y'", "running"]),
    st.sampled_from(["2026-11-01", "-2h", "5m", "1h30m", "'FAILED'"]),
    st.text(st.characters(codec="utf-8"), max_size=8).map(
        lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    ),
)
_OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "~", "!~", "like", "not ilike"])


@st.composite
def _filters(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 5 if depth < 3 else 2))
    field = draw(_FIELDS)
    if choice == 0:
        return f"{field} {draw(_OPS)} {draw(_VALUES)}"
    if choice == 1:
        return (
            f"{field} {draw(st.sampled_from(['in', 'not in']))} ({draw(_VALUES)}, {draw(_VALUES)})"
        )
    if choice == 2:
        return f"{field} {draw(st.sampled_from(['', 'is null', 'is not null']))}"
    if choice == 3:
        return f"not {draw(_filters(depth + 1))}"
    joiner = draw(st.sampled_from([" and ", " or ", " AND ", " Or "]))
    return f"({draw(_filters(depth + 1))}{joiner}{draw(_filters(depth + 1))})"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_filters())
def test_generated_filters_compile_or_fail_cleanly_and_run(store: Store, text: str) -> None:
    try:
        query = compile_query(text, now=NOW)
    except QueryError:
        return
    matched = {run.name for run in store.runs(query)}
    assert matched <= ALL
    assert store.count_runs(query) == len(matched)
    negated = compile_query(f"not ({text})", now=NOW)
    assert {run.name for run in store.runs(negated)} == ALL - matched


def test_a_metric_no_run_has_is_named_with_the_closest_ones() -> None:
    known = ["val_acc", "val_loss", "train_loss", "epoch_time"]
    warnings = unknown_metric_warnings(
        "metrics.val_accuracy > 0.9 and metrics.loss < 1", None, known
    )
    assert warnings == [
        "no run has a metric 'val_accuracy'; closest: val_acc",
        "no run has a metric 'loss'; closest: val_loss, train_loss",
    ]
    assert (
        unknown_metric_warnings("metrics.val_acc.min > 0.9", "-metrics.val_loss.max", known) == []
    )
    assert unknown_metric_warnings(None, "-metrics.nosuch", known) == [
        "no run has a metric 'nosuch'; the metrics are val_acc, val_loss, train_loss, epoch_time"
    ]
    assert unknown_metric_warnings("params.lr > 0.1 and name ~ 'x'", "name", known) == []
    # A filter that does not parse has its own error message, not this warning.
    assert unknown_metric_warnings("metrics.nosuch >", None, known) == []
    assert unknown_metric_warnings("metrics.x > 1", None, []) == [
        "no run has a metric 'x'; no run has any metric"
    ]
