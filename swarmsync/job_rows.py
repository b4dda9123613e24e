"""What a job listing and a job's status show, as plain data: `JobSummary` (a listing's row without the
Prefect flow run behind it), `JobPage` (a page of rows and the next page's cursor) and `JobResult` (what a
finished job left behind; `RemoteJobResult` reads its files through the API).

Apart from `swarmsync.jobs` (which talks to Prefect) and imports no Prefect: `swarmsync jobs`, `status`,
`result` and `files` through a SwarmSync API build only these, and start without Prefect (docs/benchmarks.md,
CLI start). `swarmsync.jobs.JobRow` is a `JobSummary` with its `flow_run`; `swarmsync.jobs.JobResult`,
`swarmsync.job_pages.JobPage` and `swarmsync.remote_jobs.RemoteJobResult` still name the classes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from swarmsync.owners import DEFAULT_PROJECT


class JobSummary(BaseModel):
    """One job as listings show it, without the Prefect flow run behind it (`swarmsync.jobs.JobRow` adds it)."""

    id: str
    state: str | None = Field(description="Prefect state name: Scheduled, Running, Completed, Failed, ...")
    state_type: str | None = Field(default=None, description="Prefect state type, e.g. COMPLETED")
    final: bool = Field(default=False, description="The job has ended (its state is final)")
    message: str | None = None
    user: str | None = Field(default=None, description="Who submitted it through the API (None: not via the API)")
    project: str = Field(default=DEFAULT_PROJECT, description="The project it belongs to")
    image: str = ""
    command: str = Field(default="", description="The command as one line")
    tags: list[str] = Field(default_factory=list)
    queue: str | None = None
    created: datetime | None = None
    scheduled: datetime | None = Field(default=None, description="When it is (or was) due to start")
    started: datetime | None = None
    ended: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = Field(default=None, description="The container's exit code, once it ended "
                                  "(read from the final state's message)")


class JobPage(list):
    """One page of a job listing: the rows (it is a list of them), and `next_cursor`, the cursor of the next
    page (None when this page is not full: nothing follows)."""

    next_cursor: str | None = None

    def __init__(self, rows: Any = (), next_cursor: str | None = None):
        super().__init__(rows)
        self.next_cursor = next_cursor


@dataclass
class JobResult:
    """What a finished job left behind."""

    job_id: str
    state: str
    exit_code: int | None
    reason: str | None
    message: str | None
    manifest: dict[str, Any]
    archive_location: str

    @property
    def output(self) -> str:
        """Interleaved stdout and stderr as text (bytes that are not UTF-8 replaced)."""
        return self.output_bytes().decode("utf-8", errors="replace")

    def output_bytes(self, name: str = "output.txt") -> bytes:
        from swarmsync import archive  # the archive's stores import Prefect: read on first use

        return archive.read_archive_file(self.job_id, name)

    @property
    def stdout(self) -> str:
        return self.output_bytes("stdout.txt").decode("utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.output_bytes("stderr.txt").decode("utf-8", errors="replace")


class RemoteJobResult(JobResult):
    """A `JobResult` read through the API (`swarmsync.Client.get_job_result`): its files come from there."""

    def __init__(self, client: Any, **fields: Any):
        super().__init__(**fields)
        self.client = client

    def output_bytes(self, name: str = "output.txt") -> bytes:
        return self.client.read_archive_file(self.job_id, name)
