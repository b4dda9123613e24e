"""`JobNotFound`, apart from `jobs.py` (which loads Prefect): both backends raise it (`swarmsync.jobs.LocalJobs`,
`swarmsync.Client`), and commands that only talk to a SwarmSync API catch it without loading Prefect."""

from __future__ import annotations


class JobNotFound(LookupError):
    """No job with that id (`swarmsync.JobNotFound`, `swarmsync.jobs.JobNotFound`)."""
