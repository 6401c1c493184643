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
:mod:`~mltop.core.importers.mlflow_rest_mapping`; this module is the two phases of the sync.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from mltop.core.common.httpclient import (
    RemoteError,
)
from mltop.core.entities import FileState, ImportReport, RunRecord, Status
from mltop.core.importers import mlflow_common as common
from mltop.core.importers import mlflow_rest_client as client
from mltop.core.importers.mlflow_rest_client import (
    BULK_RUNS,
    DEFAULT_CONCURRENCY,
    HISTORY_PAGE,
    MlflowRestClient,
    connect,
    normalize_url,
    settings_from_env,
    urls_from_env,
)
from mltop.core.importers.mlflow_rest_mapping import (
    KIND,
    BadRun,
    HistoryJob,
    Points,
    RemoteRun,
    SyncPlan,
    as_float,
    as_int,
    masked_run,
    parse_points,
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
# Histories are written when this many points wait, or this many seconds passed, whichever first.
FLUSH_POINTS = 250_000
FLUSH_SECONDS = 1.0
RUNNING_RECHECK = 60.0
MAX_RUN_PROBLEMS = 20

Progress = Callable[[str, int, int], None]


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
    store.touch_sources([(KIND, url)])
    return plan


# -- phase 2: histories ----------------------------------------------------------------------------


@dataclass
class _JobState:
    job: HistoryJob
    waiting: set[str]
    parts: list[tuple[str, Points]] = field(default_factory=list)
    failed: bool = False


class _Stop(Exception):
    """A fatal remote error ended phase 2."""


def import_histories(
    store: Store,
    client: MlflowRestClient,
    plan: SyncPlan,
    report: ImportReport,
    *,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    now: Callable[[], float] = time.time,
) -> int:
    """Phase 2: fetch the planned histories with bounded concurrency and fill them in.

    Runs are written whole (all their metrics in one transaction, with their sync state), as
    they complete. A run whose history cannot be read is reported and left to the next sync; a
    fatal error (server gone, credentials refused) stops the phase with one problem line.
    Returns the number of points added.
    """
    url = client.url
    jobs = [_JobState(j, set(j.keys)) for j in plan.jobs if j.keys]
    if not jobs:
        return 0
    total = len(jobs)
    done = 0
    added = 0
    failed_runs: list[str] = []
    ready: list[_JobState] = []
    ready_points = 0
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal ready_points, last_flush, added
        last_flush = time.monotonic()
        if not ready:
            return
        tables = []
        for state in ready:
            for key, (steps, times, values, _) in state.parts:
                n = len(values)
                tables.append(
                    pa.table(
                        {
                            "run_id": pa.array([state.job.run_id] * n, pa.string()),
                            "key": pa.array([key] * n, pa.string()),
                            "step": pa.array(steps, pa.int64()),
                            "ts": pa.array(times, pa.float64(), from_pandas=True),
                            "value": pa.array(values, pa.float64()),
                        },
                        schema=POINTS_SCHEMA,
                    )
                )
        points = pa.concat_tables(tables) if tables else POINTS_SCHEMA.empty_table()
        at = now()
        states = [
            FileState(
                path=state_path(url, s.job.native_id),
                size=len(s.job.keys),
                mtime=at,
                inode=0,
                offset=0,
                head=state_head(s.job.meta, s.job.hist),
                run_id=s.job.run_id,
                source=url,
            )
            for s in ready
        ]
        with store.transaction():
            n_added = store.add_new_points(points)
            store.refresh_summaries([s.job.run_id for s in ready])
            store.put_files(url, states)
        added += n_added
        report.add(KIND, points=n_added)
        ready.clear()
        ready_points = 0

    def deliver(state: _JobState, key: str, points: Points) -> None:
        nonlocal done, ready_points
        if state.failed or key not in state.waiting:
            return
        if points.beyond_int64:
            report.problem(
                url,
                f"run {state.job.name} ({state.job.native_id}): metric {key!r}: skipped "
                f"{points.beyond_int64:,} point(s) whose step is beyond the 64-bit range",
            )
        state.waiting.discard(key)
        state.parts.append((key, points))
        if not state.waiting:
            done += 1
            ready.append(state)
            ready_points += sum(len(p[1][2]) for p in state.parts)
            if progress:
                progress("mlflow histories", done, total)

    def fail(state: _JobState, exc: RemoteError) -> None:
        nonlocal done
        if state.failed:
            return
        state.failed = True
        done += 1
        failed_runs.append(state.job.name)
        if len(failed_runs) <= MAX_RUN_PROBLEMS:
            report.problem(url, f"run {state.job.name} ({state.job.native_id}): {exc}")

    # Tasks: ("bulk", key, [states]) or ("one", key, state)
    queue: deque[tuple[str, str, Any]] = deque()
    if client.bulk is not False:
        by_key: dict[str, list[_JobState]] = {}
        for state in jobs:
            for key in state.job.keys:
                by_key.setdefault(key, []).append(state)
        for key, states in by_key.items():
            states.sort(key=lambda s: s.job.native_id)
            for i in range(0, len(states), BULK_RUNS):
                queue.append(("bulk", key, states[i : i + BULK_RUNS]))
    else:
        for state in jobs:
            for key in state.job.keys:
                queue.append(("one", key, state))

    def run_task(task: tuple[str, str, Any]) -> Any:
        """In a worker thread: fetch and parse, so JSON decoding overlaps other requests."""
        kind, key, target = task
        if kind == "one":
            return parse_points(client.metric_history(target.job.native_id, key))
        if client.bulk is False:
            return None
        metrics = client.metric_history_bulk([s.job.native_id for s in target], key)
        if metrics is None:
            return None
        complete, rest = _split_bulk(target, key, metrics)
        return [(state, parse_points(points)) for state, points in complete], rest

    def handle(task: tuple[str, str, Any], result: Any) -> None:
        kind, key, target = task
        if kind == "one":
            deliver(target, key, result)
            return
        if result is None:  # no bulk endpoint: one request per run instead
            queue.extend(("one", key, s) for s in target)
            return
        complete, rest = result
        for state, points in complete:
            deliver(state, key, points)
        if rest and len(rest) < len(target):
            queue.append(("bulk", key, rest))
        else:  # not one run fit in the answer, or the answer skipped some: ask one by one
            queue.extend(("one", key, s) for s in rest)

    executor = ThreadPoolExecutor(max_workers=client.concurrency, thread_name_prefix="mlflow-rest")
    running: dict[Future[Any], tuple[str, str, Any]] = {}
    try:
        while queue or running:
            if should_stop and should_stop():
                break
            while queue and len(running) < client.concurrency * 2:
                task = queue.popleft()
                running[executor.submit(run_task, task)] = task
            finished, _ = wait(list(running), timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except RemoteError as exc:
                    if exc.fatal:
                        raise _Stop(str(exc)) from None
                    kind, key, target = task
                    if kind == "bulk":  # a busy server may still answer smaller requests
                        queue.extend(("one", key, s) for s in target)
                    else:
                        fail(target, exc)
                    continue
                handle(task, result)
            if ready and (
                ready_points >= FLUSH_POINTS or time.monotonic() - last_flush >= FLUSH_SECONDS
            ):
                flush()
        flush()
    except _Stop as stop:
        flush()
        report.problem(url, f"histories not fetched: {stop}")
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    if len(failed_runs) > MAX_RUN_PROBLEMS:
        report.problem(url, f"histories of {len(failed_runs)} runs could not be read in all")
    return added


def _split_bulk(
    states: list[_JobState], key: str, metrics: list[dict[str, Any]]
) -> tuple[list[tuple[_JobState, list[dict[str, Any]]]], list[_JobState]]:
    """(runs the bulk answer holds completely with their points, runs to ask again).

    The answer is sorted by run id and cut at :data:`BULK_POINTS`: when it is full, only runs
    before the last one it mentions can be complete. A run is taken only if its points include
    the latest value the search reported, so a cut this code does not expect (a server with a
    smaller cap) costs a second request, never a silently short history.
    """
    by_run: dict[str, list[dict[str, Any]]] = {}
    order: list[str] = []
    for m in metrics:
        run = m.get("run_id")
        if not isinstance(run, str):
            continue
        if run not in by_run:
            by_run[run] = []
            order.append(run)
        by_run[run].append(m)
    if len(metrics) >= client.BULK_POINTS:  # read here so a test can lower the cap
        if order != sorted(order):
            return [], list(states)  # not sorted as expected: trust nothing of a cut answer
        last = order[-1] if order else ""
        by_run = {run: points for run, points in by_run.items() if run < last}
    complete: list[tuple[_JobState, list[dict[str, Any]]]] = []
    rest: list[_JobState] = []
    for state in states:
        points = by_run.get(state.job.native_id)
        if points is not None and _holds_latest(state.job, key, points):
            complete.append((state, points))
        else:
            rest.append(state)
    return complete, rest


def _holds_latest(job: HistoryJob, key: str, points: list[dict[str, Any]]) -> bool:
    wanted = [(step, ts) for k, step, ts in job.latest if k == key]
    if not wanted:
        return True
    step, ts = wanted[0]
    return any(as_int(p.get("step")) == step and as_int(p.get("timestamp")) == ts for p in points)


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
