"""What `GET /metrics` reports about jobs, workers and archives, read at scrape time.

A Prometheus collector (`JobMetrics`) that asks the databases at every scrape instead of counting in
memory: several API replicas behind one load balancer answer the same, and a restart loses nothing.
Each part is one cheap question, whatever the length of the history:

- finished jobs and archive bytes: one GROUP BY over the archive index (state, pool, project are indexed
  together, migration 0011_archive_metrics), and one pass for each histogram over the run time and queue
  wait stored with each row (a count per bucket);
- running and queued jobs: a Prefect count per pool and queue (what `GET /jobs` asks Prefect, counted);
- workers: Prefect's workers of each pool (status and last heartbeat); worker tokens' last call (SQL).

A source that does not answer (Prefect down) is left out of that scrape and marked
`swarmsync_metrics_source_up{source} 0`; the other sources are still reported.

The archive index holds the jobs that reached a worker: a job cancelled before it started has no row and
is not counted, and retention removes rows (the job series then go down: they are gauges of the history
held, not counters, so a retention run is not read as a counter reset by `rate()`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.objects import StateType
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from swarmsync.db import ArchiveRecord, WorkerToken, session_scope
from swarmsync.jobs import JOB_FLOW_NAME
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.queue_counts import count_runs

log = logging.getLogger(__name__)

# container jobs last from under a second to an hour (the default timeout's order); so do queue waits
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
UNKNOWN_POOL = "unknown"  # rows indexed before migration 0011_archive_metrics
RUNNING = [StateType.RUNNING, StateType.CANCELLING]
QUEUED = [StateType.SCHEDULED, StateType.PENDING]  # ... and due: a delayed job is not queued before its time


def _histogram_rows(session: Session, seconds: InstrumentedAttribute[float | None]) -> list[tuple[Any, ...]]:
    """(pool, project, count, sum, cumulative bucket counts...) per pool and project, from one pass that
    puts each row in its bucket (one CASE on a stored number) and counts per bucket."""
    bucket = case(*[(seconds <= bound, index) for index, bound in enumerate(JOB_BUCKETS)], else_=len(JOB_BUCKETS))
    query = (select(ArchiveRecord.pool, ArchiveRecord.project, bucket, func.count(), func.sum(seconds))
             .where(seconds.is_not(None)).group_by(ArchiveRecord.pool, ArchiveRecord.project, bucket))
    counts: dict[tuple[Any, Any], list[int]] = {}
    sums: dict[tuple[Any, Any], float] = {}
    for pool, project, index, count, total in session.execute(query):
        place = (pool or UNKNOWN_POOL, project or DEFAULT_PROJECT)  # rows with no pool: with "unknown"
        counts.setdefault(place, [0] * (len(JOB_BUCKETS) + 1))[int(index)] += int(count)
        sums[place] = sums.get(place, 0.0) + float(total or 0.0)
    rows = []
    for place, per_bucket in sorted(counts.items()):
        cumulative = list(accumulate(per_bucket))
        rows.append((*place, cumulative[-1], sums[place], *cumulative[:-1]))
    return rows


def _histogram(name: str, doc: str, rows: Iterable[tuple[Any, ...]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["pool", "project"])
    for pool, project, count, total, *cumulative in rows:
        buckets = [(str(bound), n) for bound, n in zip(JOB_BUCKETS, cumulative, strict=True)]
        family.add_metric([pool, project], buckets + [("+Inf", count)], total)
    return family


def archive_metrics() -> list[Metric]:
    """Finished jobs by state, pool and project; archive bytes; job duration and queue-wait histograms."""
    jobs = GaugeMetricFamily("swarmsync_jobs_total", "Finished jobs in the history (the archive index), by final "
                             "state, pool and project", labels=["state", "pool", "project"])
    stored = GaugeMetricFamily("swarmsync_archive_bytes", "Bytes of archived job files held (every file of each "
                               "archive, as written), by pool and project", labels=["pool", "project"])
    with session_scope() as session:
        size = func.coalesce(ArchiveRecord.archive_bytes, ArchiveRecord.output_bytes)
        totals = session.execute(
            select(ArchiveRecord.state, ArchiveRecord.pool, ArchiveRecord.project, func.count(), func.sum(size))
            .group_by(ArchiveRecord.state, ArchiveRecord.pool, ArchiveRecord.project))
        # rows from before projects (project NULL) belong to the default project, as rows naming it do: one
        # sample per label set (Prometheus refuses a scrape with two)
        by_state: dict[tuple[str, str, str], int] = {}
        by_place: dict[tuple[str, str], int] = {}
        for state, pool, project, count, nbytes in totals:
            place = (pool or UNKNOWN_POOL, project or DEFAULT_PROJECT)
            by_state[(state, *place)] = by_state.get((state, *place), 0) + int(count)
            by_place[place] = by_place.get(place, 0) + int(nbytes or 0)
        for labels, count in sorted(by_state.items()):
            jobs.add_metric(list(labels), count)
        for place, nbytes in sorted(by_place.items()):
            stored.add_metric(list(place), nbytes)
        duration = _histogram_rows(session, ArchiveRecord.duration_seconds)
        waits = _histogram_rows(session, ArchiveRecord.queue_wait_seconds)
    return [
        jobs, stored,
        _histogram("swarmsync_job_duration_seconds", "Finished jobs' container run time (start to end)", duration),
        _histogram("swarmsync_job_queue_wait_seconds", "Finished jobs' wait from their due time to their "
                   "container's start", waits),
    ]


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def prefect_metrics() -> list[Metric]:
    """Running and queued jobs per pool and queue, and each pool's workers, from Prefect's API."""
    running = GaugeMetricFamily("swarmsync_jobs_running", "Jobs running now (or being cancelled)",
                                labels=["pool", "queue"])
    queued = GaugeMetricFamily("swarmsync_jobs_queued", "Jobs due and waiting for a worker (Scheduled, Late or "
                               "Pending)", labels=["pool", "queue"])
    online = GaugeMetricFamily("swarmsync_workers_online", "Prefect workers of the pool ONLINE now", labels=["pool"])
    heartbeat = GaugeMetricFamily("swarmsync_worker_last_heartbeat_timestamp_seconds", "Each Prefect worker's "
                                  "last heartbeat (Unix time)", labels=["pool", "worker"])
    jobs = FlowFilter(name=FlowFilterName(any_=[JOB_FLOW_NAME]))
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        for pool in client.read_work_pools():
            workers = client.read_workers_for_work_pool(pool.name)
            online.add_metric([pool.name], sum(1 for w in workers if str(w.status).upper().endswith("ONLINE")))
            for worker in workers:
                if worker.last_heartbeat_time:
                    heartbeat.add_metric([pool.name, worker.name], _epoch(worker.last_heartbeat_time))
            for queue in client.read_work_queues(work_pool_name=pool.name):
                labels = [pool.name, queue.name]
                running.add_metric(labels, count_runs(client, pool.name, queue.name, RUNNING, flows=jobs))
                queued.add_metric(labels, count_runs(client, pool.name, queue.name, QUEUED, due_before=now,
                                                     flows=jobs))
    return [running, queued, online, heartbeat]


def worker_token_metrics() -> list[Metric]:
    """When each worker token (a worker host of another machine) last called Core, by pool."""
    seen = GaugeMetricFamily("swarmsync_worker_token_last_seen_timestamp_seconds", "A worker token's last call "
                             "to Core's API (Unix time); revoked tokens left out", labels=["token", "pool"])
    with session_scope() as session:
        rows = session.execute(select(WorkerToken.name, WorkerToken.pool, WorkerToken.last_seen_at).where(
            WorkerToken.revoked_at.is_(None), WorkerToken.last_seen_at.is_not(None)).order_by(WorkerToken.name))
        for name, pool, last_seen in rows:
            seen.add_metric([name, pool], _epoch(last_seen))
    return [seen]


SOURCES: dict[str, Callable[[], list[Metric]]] = {
    "archive_index": archive_metrics,
    "prefect": prefect_metrics,
    "worker_tokens": worker_token_metrics,
}


class JobMetrics(Collector):
    """The collector `GET /metrics` registers: every source above, asked at each scrape."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("swarmsync_metrics_source_up", "1 when the source answered this scrape",
                               labels=["source"])
        for source, read in SOURCES.items():
            try:
                families = read()
            except Exception as exc:  # noqa: BLE001 - one source down must not hide the others
                log.warning("metrics: %s did not answer: %s: %s", source, type(exc).__name__, str(exc)[:300])
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing is read at registration: the databases may not be up yet
