"""`JobNotFound`, apart from `jobs.py` (which loads Prefect): both backends raise it (`swarmsync.jobs.LocalJobs`,
`swarmsync.Client`), and commands that only talk to a SwarmSync API catch it without loading Prefect."""

from __future__ import annotations

from swarmsync.errors import NotFoundError


class JobNotFound(NotFoundError):
    """No job with that id (`swarmsync.JobNotFound`, `swarmsync.jobs.JobNotFound`)."""
