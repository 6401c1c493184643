"""Phase 2 of an MLflow server's sync: full metric histories, fetched concurrently, run by run.

Apart from phase 1 (:mod:`~mltop.core.importers.mlflow_rest`, the runs and their latest
values), because this half is a different machine: a queue of requests (the bulk endpoint's
one metric of up to 100 runs, or one run's metric, paginated) over a bounded thread pool,
answers checked for being whole, and points gathered until a batch of whole runs is written in
one transaction with their sync states. It only reads the :class:`SyncPlan` phase 1 made.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from mltop.core.common.httpclient import RemoteError
from mltop.core.entities import FileState, ImportReport
from mltop.core.importers import mlflow_rest_client as client
from mltop.core.importers.mlflow_rest_client import BULK_RUNS, MlflowRestClient
from mltop.core.importers.mlflow_rest_mapping import (
    KIND,
    MAX_RUN_PROBLEMS,
    HistoryJob,
    Points,
    Progress,
    SyncPlan,
    as_int,
    parse_points,
    state_head,
    state_path,
)
from mltop.core.store import POINTS_SCHEMA, Store

# Histories are written when this many points wait, or this many seconds passed, whichever first.
FLUSH_POINTS = 250_000
FLUSH_SECONDS = 1.0


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
