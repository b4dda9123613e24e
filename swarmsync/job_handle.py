"""`JobHandle`: what a job handle is, wherever its answers come from: `swarmsync.jobs.Job` asks Prefect,
`swarmsync.remote_jobs.RemoteJob` asks a SwarmSync API. Both have the same methods (status, wait, logs,
follow_logs, result, cancel, rerun, delete, states, flow_run).

Without Prefect (`swarmsync.run_handle` imports it only to read a run): a `RemoteJob` is made and followed
without it, so `swarmsync submit`, `logs --follow` and `rerun` through an API start in a fraction of a second
(docs/benchmarks.md, CLI start)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from swarmsync.job_errors import JobNotFound
from swarmsync.log_follow import LOG_BATCH, LogEntry, follow
from swarmsync.run_handle import RunHandle


class JobHandle(RunHandle):
    """A handle on one job (a job's flow run). Subclasses answer `log_batch` and the rest."""

    noun = "job"
    not_found = JobNotFound
    poll = 0.2

    def log_batch(self, since: datetime | None = None, limit: int = LOG_BATCH, offset: int = 0) -> list[LogEntry]:
        raise NotImplementedError

    def follow_logs(self, poll: float = 0.5) -> Iterator[tuple[datetime, str, str]]:
        """Yield log lines as they arrive until the job ends and its last lines are read, in
        order, without gaps or duplicates: a batch per poll (swarmsync/log_follow.py)."""
        for entry in follow(self.log_batch, self.is_finished, poll):
            yield entry[:3]


@dataclass
class Submission:
    """One entry of `submit_many`: the job, or why it could not be created."""

    index: int
    job: JobHandle | None
    error: str | None = None
