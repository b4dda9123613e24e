"""`RemoteJob`: a job handle whose every question goes to the SwarmSync API (`swarmsync.Client`'s jobs).

A `JobHandle` like `swarmsync.jobs.Job`, with the same methods, and made, waited on and followed without
importing Prefect: only `row()` and `flow_run()`, which return the Prefect flow run, import it
(`swarmsync submit`, `logs --follow` and `rerun` through an API start without it; docs/benchmarks.md, CLI
start). `swarmsync.client.RemoteJob` still names it. Its result is a `RemoteJobResult` (in
`swarmsync.job_rows`, without Prefect; still importable from here).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from swarmsync.job_handle import JobHandle
from swarmsync.job_rows import JobSummary, RemoteJobResult
from swarmsync.log_follow import LOG_BATCH, LogEntry

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

    from swarmsync.jobs import JobRow


class RemoteJob(JobHandle):
    """A job handle whose every question goes to the SwarmSync API. `body`: the job's row as the API gave it
    (`POST /jobs`, `GET /jobs/{id}`)."""

    def __init__(self, client: Any, body: dict[str, Any]):
        super().__init__(body["id"])
        self.client = client
        self._summary = JobSummary.from_api(body)  # as given: `project`, `submitter` and `scheduled` read it

    def summary(self) -> JobSummary:
        """The job now, without its Prefect flow run (`GET /jobs/{id}`; no Prefect import)."""
        self._summary = self.client.get_job_summary(self.id)
        return self._summary

    def row(self) -> JobRow:
        """The job now, as `GET /jobs/{id}` gives it: state, final, user, image, command, times, flow run."""
        from swarmsync.jobs import JobRow

        row = JobRow.from_api(self.client.request("GET", f"/jobs/{self.id}").json())
        self._flow_run = row.flow_run
        return row

    def flow_run(self) -> FlowRun:
        return self.row().flow_run

    @property
    def project(self) -> str:
        return self._summary.project

    @property
    def submitter(self) -> str | None:
        return self._summary.user

    @property
    def scheduled(self) -> datetime | None:
        return self._summary.scheduled

    def status(self) -> str:
        return self.summary().state or "Unknown"

    def cancel(self) -> None:
        self.client.cancel_job(self.id)

    def rerun(self) -> RemoteJob:
        """Submit the job again, unchanged, in its project and pool, as the caller; returns the new job."""
        return RemoteJob(self.client, self.client.request("POST", f"/jobs/{self.id}/rerun").json())

    def delete(self) -> None:
        """Delete the finished job: its run, its archive and its Secret blocks."""
        self.client.delete_job(self.id)

    def states(self) -> list[tuple[datetime, str, str, str | None]]:
        rows = self.client.request("GET", f"/jobs/{self.id}/states").json()
        return [(datetime.fromisoformat(x["timestamp"]), x["type"], x["name"], x.get("message")) for x in rows]

    def logs(self, after: datetime | None = None) -> list[tuple[datetime, str, str]]:
        return self.client.get_job_logs(self.id, after)

    def log_batch(self, since: datetime | None = None, limit: int = LOG_BATCH, offset: int = 0) -> list[LogEntry]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if since:
            params["after"] = since.isoformat()
        lines = self.client.request("GET", f"/jobs/{self.id}/logs", params=params).json()
        return [LogEntry(datetime.fromisoformat(x["timestamp"]), x["name"], x["message"], x.get("id") or "")
                for x in lines]

    def is_finished(self) -> bool:
        return self.summary().final

    def result(self) -> RemoteJobResult:
        return self.client.get_job_result(self.id)
