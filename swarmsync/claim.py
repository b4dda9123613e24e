"""Claiming a flow run for this worker: the Scheduled -> Pending transition, made safe
against stale listings.

Prefect's server lets only one worker move a run to Pending while it is Scheduled,
Pending or Running (`PreventPendingTransitions`). It deliberately does *not* refuse
Pending from a final state (Completed, Failed, Crashed; that allows re-runs). So a worker
that listed a run while it was Scheduled, and whose Pending proposal reaches the server
only after another worker has already run it to the end (seconds later on a loaded
machine), is told "accepted" and runs the job a second time.

A Pending that came from a Scheduled state carries that state's scheduled time (the
server's `CopyScheduledTime` rule; the worker proposes a bare `Pending()`), one from a
final state does not. So a claim whose Pending lacks it was not a claim of a waiting run:
the run's previous state is put back and the worker leaves it alone.
"""

from __future__ import annotations

import logging
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import Abort
from prefect.states import Pending
from prefect.utilities.engine import propose_state


async def claim_run(client: PrefectClient, flow_run: FlowRun, log: logging.LoggerAdapter | logging.Logger) -> bool:
    """Move `flow_run` to Pending for this worker; True only if it was waiting to start."""
    try:
        state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
    except Abort as exc:
        log.info("Aborted submission of flow run '%s'. Server sent an abort signal: %s", flow_run.id, exc)
        return False
    except Exception:  # noqa: BLE001 - as Prefect's worker: the run stays for a later poll
        log.exception("Failed to update state of flow run '%s'", flow_run.id)
        return False
    if not state.is_pending():
        log.info("Aborted submission of flow run '%s': server returned a non-pending state %r",
                 flow_run.id, state.type.value)
        return False
    if state.state_details.scheduled_time is None:
        await _restore_previous_state(client, flow_run.id, state, log)
        return False
    return True


async def _restore_previous_state(
    client: PrefectClient, flow_run_id: UUID, ours: State, log: logging.LoggerAdapter | logging.Logger
) -> None:
    """Undo a Pending accepted from a state that was not Scheduled (another worker got there
    first and the run has moved on): set the state before ours again."""
    history = sorted(await client.read_flow_run_states(flow_run_id), key=lambda s: s.timestamp)
    before = [s for s in history if s.id != ours.id and s.timestamp <= ours.timestamp]
    if not before:
        log.warning("flow run '%s' reached Pending from no earlier state; leaving it", flow_run_id)
        return
    previous = before[-1]
    log.warning("flow run '%s' was already %s when this worker's claim arrived (stale listing); "
                "not running it again", flow_run_id, previous.name)
    await client.set_flow_run_state(flow_run_id, previous.fresh_copy(), force=True)
