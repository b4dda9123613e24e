"""`RemoteJob`: a job handle whose every question goes to the SwarmSync API (`swarmsync.Client`'s jobs).

Apart from `swarmsync.client` so that the client imports without Prefect (a `RemoteJob` carries a Prefect
`FlowRun`); `swarmsync.client.RemoteJob` still names it. Its result is a `RemoteJobResult` (in
`swarmsync.job_rows`, without Prefect; still importable from here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun

from swarmsync.job_rows import RemoteJobResult
from swarmsync.jobs import Job, JobRow
from swarmsync.log_follow import LOG_BATCH, LogEntry


class RemoteJob(Job):
    """A `Job` whose every question goes to the SwarmSync API."""

    def __init__(self, client: Any, body: dict[str, Any]):
        super().__init__(body["id"], FlowRun.model_validate(body["flow_run"]))
        self.client = client

    def row(self) -> JobRow:
        """The job now, as `GET /jobs/{id}` gives it: state, final, user, image, command, times."""
        row = JobRow.model_validate(self.client.request("GET", f"/jobs/{self.id}").json())
        self._flow_run = row.flow_run
        return row

    def flow_run(self) -> FlowRun:
        return self.row().flow_run

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
        return self.row().final

    def result(self) -> RemoteJobResult:
        return self.client.get_job_result(self.id)
