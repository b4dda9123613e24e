"""One interface for submitting and reading jobs, whoever answers it.

`swarmsync.jobs.LocalJobs` answers from Prefect directly (on the server host, embedded
mode); `swarmsync.Client` answers through a SwarmSync API (team mode, with the caller's
role applied). The CLI and the dashboard take a `JobBackend` and never ask which one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # typing only: the rows and handles are defined beside their implementations
    from swarmsync.job_rows import JobPage, JobResult, JobSummary
    from swarmsync.jobs import Job, Submission
    from swarmsync.spec import JobSpec


@runtime_checkable
class JobBackend(Protocol):
    """What every way in needs of jobs: submit, list, open one, download its archive."""

    def submit(
        self, image: str | JobSpec | None = None, command: list[str] | str | None = None, *,
        template: str | None = None, secret_env: dict[str, str] | None = None,
        at: datetime | str | None = None, delay: str | float | timedelta | None = None,
        pool: str | None = None, queue: str | None = None, project: str | None = None, **options: Any,
    ) -> Job:
        """Submit a job (a JobSpec, an image and options, or a saved template of `project`) to `project`
        (None: the default one); returns at once."""

    def submit_many(
        self, specs: list[JobSpec], *, pool: str | None = None, queue: str | None = None,
        project: str | None = None,
    ) -> list[Submission]:
        """Submit many jobs; each entry says which job was made or why not."""

    def job_spec(self, image: str | JobSpec | None, command: list[str] | str | None = None,
                 template: str | None = None, *, project: str | None = None, **options: Any) -> JobSpec:
        """The JobSpec a submission with these arguments would run (validated, nothing submitted)."""

    def list_jobs(self, limit: int = 50, state: str | None = None, user: str | None = None,
                  offset: int = 0, project: str | None = None, after: str | None = None) -> JobPage:
        """Jobs, newest created first, as typed rows in a `JobPage` (a list with the next page's cursor in
        `next_cursor`); `after`: that cursor (keyset paging), or `offset`: skip that many (slower the deeper);
        `project`: only that project's (None: every project the caller may read)."""

    def list_job_summaries(self, limit: int = 50, state: str | None = None, user: str | None = None,
                           offset: int = 0, project: str | None = None, after: str | None = None) -> JobPage:
        """`list_jobs` as `JobSummary` rows (no Prefect flow run: `swarmsync jobs` through an API starts without
        Prefect)."""

    def get_job(self, job_id: str) -> Job:
        """A handle on one job (`JobNotFound` if there is none)."""

    def get_job_summary(self, job_id: str) -> JobSummary:
        """One job now, as a listing shows it (`JobNotFound` if there is none); no Prefect flow run."""

    def get_job_logs(self, job_id: str, after: datetime | None = None) -> list[tuple[datetime, str, str]]:
        """(timestamp, logger name, message) of the job's log lines, oldest first (`JobNotFound` if there is
        no such job)."""

    def get_job_result(self, job_id: str) -> JobResult:
        """A finished job's result (`ArchiveNotFound` before it ends)."""

    def cancel_job(self, job_id: str) -> None:
        """Cancel the job: its container is stopped, partial output archived (`JobNotFound` if none)."""

    def delete_job(self, job_id: str) -> None:
        """Delete a finished job: its run, its archive and its Secret blocks (`JobNotFound` if none)."""

    def read_archive_file(self, job_id: str, name: str) -> bytes:
        """One file of a finished job's archive (`ArchiveNotFound` before it ends)."""

    def iter_archive_file(self, job_id: str, name: str) -> Iterator[bytes]:
        """The same file in chunks, never whole in memory (`ArchiveNotFound` raised at once)."""
