"""What a job listing and a job's status show, as plain data: `JobSummary` (a listing's row without the
Prefect flow run behind it), `JobPage` (a page of rows and the next page's cursor) and `JobResult` (what a
finished job left behind; `RemoteJobResult` reads its files through the API).

Apart from `swarmsync.jobs` (which talks to Prefect) and imports no Prefect: `swarmsync jobs`, `status`,
`result` and `files` through a SwarmSync API build only these, and start without Prefect (docs/benchmarks.md,
CLI start). `swarmsync.jobs.JobRow` is a `JobSummary` with its `flow_run`; `swarmsync.jobs.JobResult`,
`swarmsync.job_pages.JobPage` and `swarmsync.remote_jobs.RemoteJobResult` still name the classes here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from swarmsync.owners import DEFAULT_PROJECT


def _about(text: str) -> dict[str, str]:
    """A dataclass field's description, as `described` puts it in a JSON schema."""
    return {"description": text}


def described(schema: dict[str, Any], cls: type) -> None:
    """Pydantic's `json_schema_extra` for a dataclass: each field's `metadata` description into its schema
    (pydantic reads descriptions from `Field()`, which a dataclass without pydantic cannot use)."""
    for item in fields(cls):
        if "description" in item.metadata and item.name in schema.get("properties", {}):
            schema["properties"][item.name]["description"] = item.metadata["description"]


@dataclass
class JobSummary:
    """One job as listings show it, without the Prefect flow run behind it (`swarmsync.jobs.JobRow` adds it).

    A plain dataclass, not a pydantic model: `swarmsync jobs` and `status` through an API read rows with
    `from_api` and start without importing pydantic (~70 ms; docs/benchmarks.md, CLI start). Pydantic still
    validates and documents it where it is used: the API's response model (`JobRow`), whose OpenAPI schema
    takes each field's description from its `metadata` (`described`)."""

    id: str
    state: str | None = field(metadata=_about("Prefect state name: Scheduled, Running, Completed, Failed, ..."))
    state_type: str | None = field(default=None, metadata=_about("Prefect state type, e.g. COMPLETED"))
    final: bool = field(default=False, metadata=_about("The job has ended (its state is final)"))
    message: str | None = None
    user: str | None = field(default=None, metadata=_about("Who submitted it through the API (None: not via the API)"))
    project: str = field(default=DEFAULT_PROJECT, metadata=_about("The project it belongs to"))
    image: str = ""
    command: str = field(default="", metadata=_about("The command as one line"))
    tags: list[str] = field(default_factory=list)
    queue: str | None = None
    created: datetime | None = None
    scheduled: datetime | None = field(default=None, metadata=_about("When it is (or was) due to start"))
    started: datetime | None = None
    ended: datetime | None = None
    duration_s: float | None = None
    exit_code: int | None = field(default=None, metadata=_about(
        "The container's exit code, once it ended (read from the final state's message)"))

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> JobSummary:
        """A row from the API's JSON (`GET /jobs`, `GET /jobs/{id}`), its other keys (`flow_run`) left out."""
        row = {k: v for k, v in body.items() if k in _SUMMARY_FIELDS}
        for name in _TIMES:
            if row.get(name) is not None:
                row[name] = datetime.fromisoformat(row[name])
        return cls(**row)


_TIMES = ("created", "scheduled", "started", "ended")
_SUMMARY_FIELDS = frozenset(f.name for f in fields(JobSummary))  # what `from_api` keeps of a row's JSON


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
