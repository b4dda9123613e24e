"""Where the job commands go: Prefect directly (on the server host), or a SwarmSync API
when SWARMSYNC_URL is set or `swarmsync login` stored one. Both offer the same names."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from swarmsync import archive, jobs
from swarmsync.client import Client, remote_configured

LOCAL = SimpleNamespace(
    submit=jobs.submit, submit_many=jobs.submit_many, list_jobs=jobs.list_jobs, get_job=jobs.get_job,
    read_archive_file=archive.read_archive_file,
)


def job_backend() -> Any:
    return Client.from_settings() if remote_configured() else LOCAL
