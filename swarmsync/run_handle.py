"""What a job handle and a pipeline handle share: one Prefect flow run, read on demand, its state,
and waiting for it to end (`jobs.Job` and `pipelines.Pipeline` add what differs)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Self
from uuid import UUID

from swarmsync.errors import NotFoundError
from swarmsync.owners import project_of, submitted_by

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

# Prefect is imported where a handle reads its run: `swarmsync.RemoteJob` (a handle through the API) imports
# none, so `swarmsync submit` through an API starts without it (docs/benchmarks.md, CLI start).


class RunHandle:
    """A handle on one flow run by its id. Subclasses implement `flow_run()` (reading it, or raising
    their own not-found error) and name themselves in `noun` ("job", "pipeline") for messages."""

    noun: ClassVar[str] = "run"
    not_found: ClassVar[type[NotFoundError]] = NotFoundError  # raised for an id naming no such run
    poll: ClassVar[float] = 0.5  # seconds between reads while waiting

    def __init__(self, run_id: str | UUID, flow_run: FlowRun | None = None):
        self.id = str(run_id)
        self._flow_run = flow_run

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"

    @classmethod
    def get(cls, run_id: str | UUID) -> Self:
        """The handle on the run with this id, read once: `not_found` if the id is not a UUID or
        names no such run."""
        try:
            handle = cls(str(UUID(str(run_id))))
        except ValueError:
            raise cls.not_found(f"{run_id!r} is not a {cls.noun} id (a UUID)") from None
        handle.flow_run()
        return handle

    def flow_run(self) -> FlowRun:
        raise NotImplementedError

    def _read_flow_run(self) -> FlowRun:
        """The flow run as the server has it now: `not_found` if there is none."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                return client.read_flow_run(UUID(self.id))
            except ObjectNotFound:
                raise self.not_found(f"no {self.noun} with id {self.id}") from None

    def last_read(self) -> FlowRun:
        """The flow run as last read (as created, for a handle `submit` returned), read now if it never was: for
        what a run keeps, or a reply about the moment it was made (`POST /jobs` answers with it, without reading
        the run back)."""
        return self._flow_run or self.flow_run()

    @property
    def project(self) -> str:
        """The project the run belongs to (read once)."""
        return project_of(self.last_read())

    @property
    def submitter(self) -> str | None:
        """Who submitted it through the API (read once; None: not through the API)."""
        return submitted_by(self.last_read())

    @property
    def scheduled(self) -> datetime | None:
        """When the run is (or was) due to start (read once)."""
        return self.last_read().expected_start_time

    def status(self) -> str:
        """The Prefect state name: Scheduled, Pending, Running, Completed, Failed, ..."""
        state = self.flow_run().state
        return state.name if state else "Unknown"

    def is_finished(self) -> bool:
        state = self.flow_run().state
        return bool(state and state.is_final())

    def wait(self, timeout: float | None = None, poll: float | None = None) -> Self:
        """Block until the run ends; TimeoutError if it takes longer than `timeout` s."""
        deadline = time.monotonic() + timeout if timeout else None
        while not self.is_finished():
            if deadline and time.monotonic() > deadline:
                raise TimeoutError(f"{self.noun} {self.id} still {self.status()} after {timeout} s")
            time.sleep(self.poll if poll is None else poll)
        return self
