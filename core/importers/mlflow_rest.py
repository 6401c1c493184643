"""An MLflow tracking server, read over its REST API into the same store as local runs.

``mltop --mlflow URL`` (or ``MLFLOW_TRACKING_URI=http(s)://...``) imports a server's runs with
source kind ``mlflow-server``, so filters, compare and diff treat them like local runs. The import
has two phases because a server can hold tens of thousands of runs and millions of points:

1. :func:`sync_runs` lists experiments and runs (``experiments/search``, ``runs/search`` with the
   largest page the server allows). A search page carries each run's params, tags and the latest
   value of each metric, which is all the runs table needs: those land at once, in batches of
   whole runs, the latest values as one point per metric so the summaries are right.
2. :func:`import_histories` fetches full metric histories in the background with bounded
   concurrency and fills them in, run by run. ``mltop ingest`` runs both; the TUI runs phase 2 in
   a worker so the table shows before any history arrives.

Histories come from the MLflow UI's bulk endpoint (``get-history-bulk``: one metric of up to 100
runs per request) when the server has it, which is an order of magnitude faster than one request
per (run, metric); otherwise, and for any run the bulk answer cut short, from the public
``metrics/get-history`` endpoint, paginated. The bulk answer is sorted by run id and capped at
25,000 points: every run before the last one it mentions is complete, the rest are asked again.

Re-syncing is incremental. MLflow cannot search runs by last update, so every sync lists all runs
again, but it rewrites only runs whose search row changed and re-fetches histories only for runs
whose status, end time or latest metrics changed since their histories were last fetched (and,
at most once a minute, for RUNNING runs: a point logged below the latest step changes no latest
value). MLflow histories are append-only, and the API can only send a whole history, so the store
keeps only the points it does not hold yet (:meth:`Store.add_new_points`): a training run's charts
grow without rewriting what is there. What was last synced is kept per run as a file state keyed
``mlflow+URL#run/RUN_ID``, written in the same transaction as the run.

Transport and auth follow MLflow's own client (:func:`settings_from_env`): ``MLFLOW_TRACKING_TOKEN``
(bearer), ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic; also read from
``~/.mlflow/credentials``), user and password in the URL, ``MLFLOW_TRACKING_INSECURE_TLS``,
``MLFLOW_TRACKING_SERVER_CERT_PATH``, ``MLFLOW_TRACKING_CLIENT_CERT_PATH``, and
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``_MAX_RETRIES`` / ``_BACKOFF_FACTOR``. Credentials are
never stored nor shown: the server's URL is kept without userinfo, URLs in tags and artifact
locations lose theirs too, and the secrets themselves are masked wherever a server sends them
back (run names, params, tags, error bodies; see :meth:`Credentials.mask`).

The HTTP side (URLs, settings, paging, the REST calls) is
:mod:`~mltop.core.importers.mlflow_rest_client`; parsing answers and mapping a run to a record is
:mod:`~mltop.core.importers.mlflow_rest_mapping`; phase 2 is
:mod:`~mltop.core.importers.mlflow_rest_histories`; this module is phase 1 and a server's sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from mltop.core.common.httpclient import (
    RemoteError,
)
from mltop.core.entities import FileState, ImportReport, RunRecord, Status
from mltop.core.importers import mlflow_common as common
from mltop.core.importers.mlflow_rest_client import (
    DEFAULT_CONCURRENCY,
    HISTORY_PAGE,
    MlflowRestClient,
    connect,
    normalize_url,
    settings_from_env,
    urls_from_env,
)
from mltop.core.importers.mlflow_rest_histories import import_histories
from mltop.core.importers.mlflow_rest_mapping import (
    KIND,
    MAX_RUN_PROBLEMS,
    BadRun,
    HistoryJob,
    Progress,
    RemoteRun,
    SyncPlan,
    as_float,
    masked_run,
    parse_run,
    parse_state_head,
    scrub,
    state_head,
    state_path,
    sync_digest,
    to_record,
)
from mltop.core.store import POINTS_SCHEMA, Store

# The names callers reach through this module (the command line, the app, the bench): the sync
# itself, and the client and mapping pieces it is made of.
__all__ = [
    "DEFAULT_CONCURRENCY",
    "HISTORY_PAGE",
    "KIND",
    "MAX_RUN_PROBLEMS",
    "MlflowRestClient",
    "RemoteError",
    "SyncPlan",
    "as_float",
    "connect",
    "import_histories",
    "normalize_url",
    "parse_run",
    "scrub",
    "settings_from_env",
    "sync_runs",
    "sync_server",
    "urls_from_env",
]

WRITE_BATCH_RUNS = 2_000
RUNNING_RECHECK = 60.0


# -- phase 1: runs ---------------------------------------------------------------------------------


@dataclass
class _Pending:
    run: RemoteRun
    record: RunRecord
    meta: str
    hist: str  # what the state records as fetched (old digest, or new when nothing to fetch)
    fetched_at: float


def _write_runs(store: Store, url: str, batch: list[_Pending], experiments: list[Any]) -> int:
    """One transaction: runs with params, tags, latest values and their sync states."""
    ids = [p.record.id for p in batch]
    # (run id, key, step, timestamp ms, value) of each latest value
    rows = [(p.record.id, *latest) for p in batch for latest in p.run.latest]
    points = pa.table(
        {
            "run_id": pa.array([r[0] for r in rows], pa.string()),
            "key": pa.array([r[1] for r in rows], pa.string()),
            "step": pa.array([r[2] for r in rows], pa.int64()),
            "ts": pa.array(
                [r[3] / 1000.0 if r[3] is not None else None for r in rows], pa.float64()
            ),
            "value": pa.array([r[4] for r in rows], pa.float64()),
        },
        schema=POINTS_SCHEMA,
    )
    states = [
        FileState(
            path=state_path(url, p.run.native_id),
            size=len(p.run.latest),
            mtime=p.fetched_at,
            inode=0,
            offset=0,
            head=state_head(p.meta, p.hist),
            run_id=p.record.id,
            source=url,
        )
        for p in batch
    ]
    with store.transaction():
        if experiments:
            store.put_experiments(experiments)
        store.put_runs(
            url,
            [p.record for p in batch],
            params=[(p.record.id, k, v) for p in batch for k, v in p.run.params],
            tags=[(p.record.id, k, scrub(v)) for p in batch for k, v in p.run.tags.items()],
        )
        added = store.add_new_points(points)
        store.refresh_summaries(ids)
        store.put_files(url, states)
    return added


def sync_runs(
    store: Store,
    client: MlflowRestClient,
    report: ImportReport,
    *,
    progress: Progress | None = None,
    now: float | None = None,
) -> SyncPlan:
    """Phase 1: bring the server's runs (with latest metric values) into the store.

    Raises :class:`RemoteError` when the server cannot be read; runs already written stay (each
    batch is whole). Returns the histories phase 2 must fetch.
    """
    url = client.url
    now = time.time() if now is None else now
    plan = SyncPlan(url)
    cut: list[str] = []  # why a listing stopped early (a server whose paging never ends)
    exps = client.experiments(cut)
    exp_rows: list[common.ExperimentRow] = []
    deleted: set[str] = set()
    for e in exps:
        native = e.get("experiment_id")
        if native in (None, ""):
            continue
        native = str(native)
        exp_rows.append(
            (
                common.experiment_id(KIND, url, native),
                KIND,
                url,
                native,
                client.settings.credentials.mask(str(e.get("name") or native)),
            )
        )
        if str(e.get("lifecycle_stage", "")).lower() == common.DELETED:
            deleted.add(native)
    known = {x.id: x.name for x in store.experiments()}
    new_exps = [row for row in exp_rows if known.get(row[0]) != row[4]]

    states = store.file_states(url)
    prefix = f"mlflow+{url}#run/"
    by_native = {p[len(prefix) :]: s for p, s in states.items() if p.startswith(prefix)}
    seen: set[str] = set()
    pending: list[_Pending] = []
    bad = 0
    unusable = 0
    if progress:
        progress("mlflow runs", 0, 0)

    def flush() -> None:
        nonlocal new_exps
        if not pending and not new_exps:
            return
        added = _write_runs(store, url, pending, new_exps)
        report.add(KIND, runs=len(pending), points=added)
        plan.runs_written += len(pending)
        new_exps = []
        pending.clear()

    exp_ids = [row[3] for row in exp_rows]
    pages = client.search_runs(exp_ids, cut=cut) if exp_ids else iter(())
    for page in pages:
        for obj in page:
            try:
                run = parse_run(obj)
            except BadRun as exc:
                bad += 1
                if bad <= 3:
                    report.problem(url, f"runs/search: skipped a run ({exc})")
                continue
            if run.native_id in seen:
                continue
            seen.add(run.native_id)
            run = masked_run(run, client.settings.credentials)
            record = to_record(url, run, deleted)
            for key, why in run.unusable:
                unusable += 1
                if unusable <= MAX_RUN_PROBLEMS:
                    report.problem(
                        url,
                        f"run {record.name} ({run.native_id}): metric {key!r}: latest value "
                        f"skipped ({why})",
                    )
            # ``unusable`` joins the digests only when present, so existing states stay valid.
            odd = (run.unusable,) if run.unusable else ()
            meta = sync_digest(record, run.params, sorted(run.tags.items()), run.latest, *odd)
            hist = sync_digest(record.status, run.end_ms, run.latest, *odd)
            state = by_native.get(run.native_id)
            old_meta, old_hist = parse_state_head(state.head) if state else ("", "")
            fetched_at = state.mtime if state else 0.0
            if not run.metric_keys:
                # Nothing to fetch: the run's histories are complete as they are (empty).
                recorded_hist, fetch = hist, False
            else:
                recorded_hist = old_hist
                fetch = hist != old_hist or (
                    Status.parse(record.status) is Status.RUNNING
                    and now - fetched_at >= RUNNING_RECHECK
                )
            if fetch:
                plan.jobs.append(
                    HistoryJob(
                        record.id,
                        run.native_id,
                        record.name,
                        run.metric_keys,
                        meta,
                        hist,
                        tuple((k, step, ts) for k, step, ts, _ in run.latest),
                    )
                )
            if meta != old_meta or recorded_hist != old_hist:
                pending.append(_Pending(run, record, meta, recorded_hist, fetched_at))
                if len(pending) >= WRITE_BATCH_RUNS:
                    flush()
            plan.runs_seen += 1
        if progress:
            progress("mlflow runs", plan.runs_seen, plan.runs_seen)
    flush()
    if bad > 3:
        report.problem(url, f"runs/search: skipped {bad} runs in all")
    if unusable > MAX_RUN_PROBLEMS:
        report.problem(url, f"runs/search: skipped {unusable} latest values in all")
    for reason in cut:
        report.problem(url, reason)
    # A listing cut short says nothing of the runs it did not reach: none counts as gone.
    gone = [] if cut else [s for native, s in by_native.items() if native not in seen]
    if gone:
        with store.transaction():
            store.delete_runs([s.run_id for s in gone if s.run_id])
            store.delete_files([s.path for s in gone])
        plan.runs_removed = len(gone)
        report.removed_runs += len(gone)
    store.touch_sources([KIND], [url])
    return plan


# -- both phases -----------------------------------------------------------------------------------


def sync_server(
    store: Store,
    url: str,
    report: ImportReport,
    *,
    histories: bool = True,
    progress: Progress | None = None,
    client: MlflowRestClient | None = None,
    **client_options: Any,
) -> SyncPlan | None:
    """Import one server (phase 1, then phase 2 when ``histories``), never raising on it.

    A failure becomes one problem line ``URL: what went wrong``; None when phase 1 failed.
    """
    own = client is None
    shown = url
    report.sources_seen += 1
    first_problem = len(report.problems)
    try:
        shown = normalize_url(url)[0]
        if client is None:
            client = MlflowRestClient(url, **client_options)
        plan = sync_runs(store, client, report, progress=progress)
        if histories:
            import_histories(store, client, plan, report, progress=progress)
        return plan
    except RemoteError as exc:
        report.problem(shown, str(exc))
        return None
    finally:
        if client is not None:
            # Every line about this server, whatever raised it, without the secrets.
            mask = client.settings.credentials.mask
            for i in range(first_problem, len(report.problems)):
                problem = report.problems[i]
                report.problems[i] = replace(problem, message=mask(problem.message))
        if own and client is not None:
            client.close()
