"""The store's schema: the numbered migrations, the tables' shared SQL fragments and constants.

Kept apart from the code that runs SQL so every family module (runs, points, files, logs) and
the connection read one definition of the tables and of what a store file is called.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mltop.core.entities import MetricSummary

STORE_ENV = "MLTOP_STORE"
STORE_DIR = ".mltop"
STORE_FILE = "store.duckdb"

POINTS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("key", pa.string()),
        ("step", pa.int64()),
        ("ts", pa.float64()),
        ("value", pa.float64()),
    ]
)

# Numbered migrations. A store records the highest number applied; opening it applies the rest in
# order, each in its own transaction. Never edit a released migration: add the next one.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE SEQUENCE IF NOT EXISTS source_ids START 1",
            """CREATE TABLE sources (
                id INTEGER DEFAULT nextval('source_ids'),
                kind VARCHAR NOT NULL,
                location VARCHAR NOT NULL,
                last_scan DOUBLE
            )""",
            """CREATE TABLE files (
                path VARCHAR NOT NULL,
                source VARCHAR,
                size BIGINT,
                mtime DOUBLE,
                inode BIGINT,
                "offset" BIGINT,
                head VARCHAR,
                run_id VARCHAR
            )""",
            """CREATE TABLE experiments (
                id VARCHAR NOT NULL,
                source_kind VARCHAR,
                source VARCHAR,
                native_id VARCHAR,
                name VARCHAR
            )""",
            """CREATE TABLE runs (
                id VARCHAR NOT NULL,
                source_kind VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                location VARCHAR,
                native_id VARCHAR,
                experiment_id VARCHAR,
                name VARCHAR,
                status VARCHAR,
                lifecycle VARCHAR,
                start_time DOUBLE,
                end_time DOUBLE,
                parent_id VARCHAR,
                git_commit VARCHAR,
                host VARCHAR,
                artifact_uri VARCHAR,
                error VARCHAR,
                updated DOUBLE
            )""",
            "CREATE TABLE params (run_id VARCHAR, key VARCHAR, value VARCHAR, num DOUBLE)",
            "CREATE TABLE tags (run_id VARCHAR, key VARCHAR, value VARCHAR)",
            """CREATE TABLE metrics (
                run_id VARCHAR, key VARCHAR, step BIGINT, ts DOUBLE, value DOUBLE
            )""",
        ],
    ),
    (
        # The runs table must never aggregate full histories: keep one summary row per metric.
        # Backfilled from the histories already in the store.
        2,
        [
            """CREATE TABLE metric_summary (
                run_id VARCHAR, key VARCHAR,
                last DOUBLE, min DOUBLE, max DOUBLE, count BIGINT,
                first_step BIGINT, last_step BIGINT, min_step BIGINT, max_step BIGINT,
                last_time DOUBLE
            )""",
            "INSERT INTO metric_summary {summary_select}",
        ],
    ),
    (
        3,
        ["CREATE TABLE logs (run_id VARCHAR, path VARCHAR)"],
    ),
    (
        # The folder a store in `.mltop/` indexes, so a copied or moved store can tell (see
        # Store._settle_anchor).
        4,
        ["CREATE TABLE store_meta (key VARCHAR NOT NULL, value VARCHAR)"],
    ),
    (
        # The model registry: models, versions, aliases and tags per source (a database, an
        # mlruns folder, a server), and the fingerprint of what was read, so an unchanged
        # registry is not read again.
        5,
        [
            """CREATE TABLE registry_models (
                source_kind VARCHAR, source VARCHAR, name VARCHAR, description VARCHAR,
                created DOUBLE, updated DOUBLE
            )""",
            """CREATE TABLE registry_versions (
                source_kind VARCHAR, source VARCHAR, name VARCHAR, version VARCHAR, seq BIGINT,
                run_native_id VARCHAR, uri VARCHAR, status VARCHAR, status_message VARCHAR,
                stage VARCHAR, description VARCHAR, created DOUBLE, updated DOUBLE,
                user_id VARCHAR, model_id VARCHAR, deleted BOOLEAN
            )""",
            """CREATE TABLE registry_aliases (
                source VARCHAR, name VARCHAR, alias VARCHAR, version VARCHAR
            )""",
            """CREATE TABLE registry_tags (
                source VARCHAR, name VARCHAR, version VARCHAR, key VARCHAR, value VARCHAR
            )""",
            "CREATE TABLE registry_scans (source VARCHAR, fingerprint VARCHAR)",
        ],
    ),
    (
        # When the app or its watcher last brought a folder up to date, so that `mltop runs`
        # right after need not walk a hundred thousand run folders again (Store.last_scan).
        8,
        ["CREATE TABLE scans (root VARCHAR NOT NULL, started DOUBLE NOT NULL)"],
    ),
    (
        # MLflow 3 logged models behind registered versions, with their own metrics and params:
        # a version registered from ``models:/m-...`` shows them even when its run is gone.
        9,
        [
            """CREATE TABLE registry_logged_models (
                source VARCHAR, model_id VARCHAR, name VARCHAR, experiment_id VARCHAR,
                run_native_id VARCHAR, status VARCHAR, created DOUBLE, updated DOUBLE
            )""",
            """CREATE TABLE registry_logged_metrics (
                source VARCHAR, model_id VARCHAR, key VARCHAR, value DOUBLE, step BIGINT,
                ts BIGINT, dataset_name VARCHAR
            )""",
            """CREATE TABLE registry_logged_params (
                source VARCHAR, model_id VARCHAR, key VARCHAR, value VARCHAR
            )""",
            # Every registry is read again on the next scan, to find its logged models.
            "DELETE FROM registry_scans",
        ],
    ),
    (
        # What an importer last wrote of each run, as a number it computes from the source's
        # rows: a fresh process re-reading a changed MLflow database rewrites only the runs
        # whose rows changed (Store.put_runs keeps it, Store.metadata_digests reads it).
        13,
        ["CREATE TABLE metadata_digests (run_id VARCHAR NOT NULL, digest BIGINT NOT NULL)"],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Every column that holds a path of a source file or folder. When a store's folder is copied or
# moved, these are rebased onto the new location in one transaction (Store._settle_anchor).
PATH_COLUMNS = (
    ("sources", "location"),
    ("files", "path"),
    ("files", "source"),
    ("experiments", "source"),
    ("runs", "source"),
    ("runs", "location"),
    ("logs", "path"),
    ("registry_models", "source"),
    ("registry_versions", "source"),
    ("registry_aliases", "source"),
    ("registry_tags", "source"),
    ("registry_scans", "source"),
    ("registry_logged_models", "source"),
    ("registry_logged_metrics", "source"),
    ("registry_logged_params", "source"),
    ("scans", "root"),
)
DERIVED_TABLES = (
    "sources", "files", "experiments", "runs", "params", "tags", "metrics", "metric_summary",
    "logs", "registry_models", "registry_versions", "registry_aliases", "registry_tags",
    "registry_scans", "scans", "registry_logged_models", "registry_logged_metrics",
    "registry_logged_params", "metadata_digests",
)  # fmt: skip

# One aggregate per (run, key). "last" is the value at the highest step, ties broken by time;
# min/max ignore NaN and infinities so one diverged step does not hide the best value (nor
# become it: an accuracy of inf is no best). The step of the min or max is the first step that
# reached it: arg_min alone picks any of tied rows, which changed with the order rows arrived.
SUMMARY_SELECT = """
SELECT run_id, key,
       arg_max(value, (step, coalesce(ts, 0))) AS last,
       min(value) FILTER (WHERE isfinite(value)) AS min,
       max(value) FILTER (WHERE isfinite(value)) AS max,
       count(*) AS count,
       min(step) AS first_step,
       max(step) AS last_step,
       arg_min(step, (value, step)) FILTER (WHERE isfinite(value)) AS min_step,
       arg_max(step, (value, -step)) FILTER (WHERE isfinite(value)) AS max_step,
       max(ts) AS last_time
FROM {table} {where}
GROUP BY run_id, key
"""

# metric_summary's columns in order: a MetricSummary is made from a row of them.
SUMMARY_COLUMNS = ", ".join(MetricSummary.__dataclass_fields__)

RUN_COLUMNS = (
    "r.id, r.name, r.status, e.name, r.source_kind, r.location, r.start_time, r.end_time, "
    "r.parent_id, r.git_commit, r.host, r.lifecycle, r.artifact_uri, r.error, r.updated, "
    "r.native_id, r.experiment_id"
)
RUN_FROM = "runs r LEFT JOIN experiments e ON e.id = r.experiment_id"

#: ``runs.updated`` (the newest sign of life of a run) is kept to within this many seconds.
UPDATED_RESOLUTION = 10.0

#: Id sets up to this size are matched without a join (see :meth:`Store._matching`).
SMALL_ID_SET = 256


class StoreError(Exception):
    """The store file cannot be used (corrupt, not a DuckDB file, newer schema)."""


def default_store_path(root: Path) -> Path:
    return root / STORE_DIR / STORE_FILE
