"""What the worker hands to a job flow running in its process: the pool's host policy,
pull policy and name, an event set when the run is cancelled, and what to do once the run
has ended.

The worker sets these context variables before it runs a flow; flows started by
any other worker get the defaults.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import anyio

from swarmsync.policy import HostPolicy

current_policy: ContextVar[HostPolicy | None] = ContextVar("swarmsync_policy", default=None)
current_pull_policy: ContextVar[str | None] = ContextVar("swarmsync_pull_policy", default=None)
current_pool: ContextVar[str | None] = ContextVar("swarmsync_pool", default=None)
# threads removing this run's containers while its result is archived; the flow joins them
pending_removals: ContextVar[list | None] = ContextVar("swarmsync_pending_removals", default=None)
current_cancel_event: ContextVar[anyio.Event | None] = ContextVar("swarmsync_cancel", default=None)
# the pool's prefect-docker blocks: `DockerHost` (which engine) and `DockerRegistryCredentials`
current_docker_host: ContextVar[Any | None] = ContextVar("swarmsync_docker_host", default=None)
current_registry_credentials: ContextVar[Any | None] = ContextVar("swarmsync_registry_credentials", default=None)
# the pool's archive store: a Prefect filesystem block slug (None: the installation's store)
current_archive_block: ContextVar[str | None] = ContextVar("swarmsync_archive_block", default=None)
# name of the Scheduled state the worker claimed the run from ("AwaitingRetry": a retry
# asked for, e.g. the Prefect UI's Retry; "Resuming": recovery after a worker died)
claimed_from: ContextVar[str | None] = ContextVar("swarmsync_claimed_from", default=None)
# work the worker does right after the run's final state is set (the run's Prefect artifacts:
# the final state need not wait for them); None under other workers: done before it ends
after_final_state: ContextVar[list | None] = ContextVar("swarmsync_after_final_state", default=None)
