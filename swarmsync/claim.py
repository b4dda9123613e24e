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
the run's final state is put back and the worker leaves it alone.
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
        try:
            await _restore_final_state(client, flow_run.id, log)
        except Exception:  # noqa: BLE001 - never the worker's end (it was, for a host whose gateway refused the read)
            log.exception("flow run '%s' was claimed from a final state, which could not be put back", flow_run.id)
        return False
    return True


def latest_final_state(history: list[State]) -> State | None:
    """The state a run was in when a stale claim's Pending was accepted: its latest final state.

    Prefect refuses Pending from Pending, Running, Cancelling and Cancelled, and a Pending from
    Scheduled carries the scheduled time, so a Pending without one was accepted from a final
    state (Completed, Failed, Crashed). Timestamps do not order our Pending against the others:
    the server stamps a state when the request arrives, and under load a Pending that arrived
    before the run's Completed can be orchestrated after it (stamped earlier, applied later).
    Final states of one run are seconds apart and ordered by their stamps, so the latest final
    state is the one to put back; a non-final state is never forced back (forcing Running onto a
    finished run would leave it Running for ever)."""
    return max((s for s in history if s.is_final()), key=lambda s: s.timestamp, default=None)


async def _restore_final_state(
    client: PrefectClient, flow_run_id: UUID, log: logging.LoggerAdapter | logging.Logger
) -> None:
    """Undo a Pending accepted from a final state (another worker got there first and ran the
    run to its end): set that final state again."""
    final = latest_final_state(await client.read_flow_run_states(flow_run_id))
    if final is None:
        log.warning("flow run '%s' reached Pending from no final state; leaving it", flow_run_id)
        return
    log.warning("flow run '%s' was already %s when this worker's claim arrived (stale listing); "
                "not running it again", flow_run_id, final.name)
    await client.set_flow_run_state(flow_run_id, final.fresh_copy(), force=True)
