"""The worker <-> job flow contract: what the SwarmSync worker hands to a job flow that
runs in its own process, as one typed object in one context variable.

Built like Prefect's own context models (`prefect.context.ContextModel`): the worker
enters a `JobRuntime` around each flow run (`with JobRuntime(...):`), the flow reads it
with `JobRuntime.get()`. A flow run by any other worker type finds none and uses
`JobRuntime()` (the defaults: the local engine, the built-in policy, polling for cancel).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ClassVar

import anyio
from prefect.context import ContextModel
from pydantic import Field

from swarmsync.policy import HostPolicy, PolicyViolation
from swarmsync.spec import JobSpec


class JobRuntime(ContextModel):
    """One job flow run's view of its worker and pool.

    Attributes:
        policy: the pool's host policy (ceilings, defaults, what is allowed, who may use the pool), from
            the pool's base job template alone: job variables of a run or deployment never change it.
        submitter: who submitted the run through the SwarmSync API (its `swarmsync.user` label or tag);
            None: created without the API (embedded mode, Prefect's own tools: trusted callers).
        submitter_role: that user's role now (None: no such user, or disabled).
        project: the run's project (swarmsync.owners.project_of).
        submitter_project_role: the submitter's role in that project now (None: not a member).
        pull_policy: the pool's image pull policy.
        pool: the work pool's name.
        engine: the pool's Docker engine, a prefect-docker `DockerHost` block (None: the local one).
        registry_credentials: the pool's `DockerRegistryCredentials` block, used before a pull.
        archive_block: the pool's archive store, a filesystem block slug (None: the installation's).
        claimed_from: name of the Scheduled state the worker claimed the run from ('AwaitingRetry':
            a retry asked for; 'Resuming': recovery after a worker died); None: no SwarmSync worker.
        cancel_event: set by the worker's shared watcher when the run is cancelled (None: poll).
        after_final_state: work the worker runs right after the final state is set (the run's
            artifacts); None: the flow does it before it ends.
        pending_removals: threads removing this run's containers; the flow joins them before it ends.
    """

    __var__: ClassVar[ContextVar[JobRuntime]] = ContextVar("swarmsync_job_runtime")

    policy: HostPolicy = Field(default_factory=HostPolicy)
    submitter: str | None = None
    submitter_role: str | None = None
    project: str | None = None
    submitter_project_role: str | None = None
    pull_policy: str | None = None
    pool: str | None = None
    engine: Any | None = None
    registry_credentials: Any | None = None
    archive_block: str | None = None
    claimed_from: str | None = None
    cancel_event: anyio.Event | None = None
    after_final_state: list[Callable[[], Awaitable[None]]] | None = None
    pending_removals: list[threading.Thread] = Field(default_factory=list)

    def check(self, spec: JobSpec) -> JobSpec:
        """The job as it will run here (resolved with the pool's defaults); PolicyViolation when its
        submitter (a schedule's owner) may no longer run jobs in its project or use the pool, or it
        exceeds the pool's policy."""
        if self.submitter is not None:
            self.policy.check_caller(self.submitter, self.submitter_role, self.project)
            self._check_member()
        return self.policy.check(spec)

    def _check_member(self) -> None:
        who, project = self.submitter, self.project or "default"
        if self.submitter_role is None:
            raise PolicyViolation(f"{who}, who submitted this job (or owns its schedule), is no longer "
                                  "a user (removed or disabled)")
        if self.submitter_role == "admin":
            return
        if self.submitter_project_role is None:
            raise PolicyViolation(f"{who}, who submitted this job (or owns its schedule), is no longer a "
                                  f"member of project {project}")
        if "viewer" in (self.submitter_role, self.submitter_project_role):
            raise PolicyViolation(f"{who}, who submitted this job (or owns its schedule), may only read "
                                  f"in project {project} now (a viewer)")

    @classmethod
    def current(cls) -> JobRuntime:
        """The runtime the worker entered, or the defaults outside a SwarmSync worker."""
        return cls.get() or cls()
