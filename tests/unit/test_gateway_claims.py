"""Which answers of Prefect to a state proposal make a worker token's claim (swarmsync.gateway.proxy):
accepted now, or a duplicate of a proposal accepted before (its answer lost), and each token's transition
ids its own."""

from __future__ import annotations

import uuid

from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.gateway.proxy import accepted, bind_transition

HOST_A = WorkerPrincipal(token_id=1, name="a", pool="p", queue=None)
HOST_B = WorkerPrincipal(token_id=2, name="b", pool="p", queue=None)


def pending(transition: str | None) -> dict:
    return {"type": "PENDING", "state_details": {"transition_id": transition}}


def test_accepted_now_or_as_the_duplicate_of_the_same_transition() -> None:
    sent = pending("t-1")
    assert accepted(sent, {"status": "ACCEPT", "state": pending("t-1")})
    assert accepted(sent, {"status": "REJECT", "state": pending("t-1")})  # the same proposal, sent again
    assert not accepted(sent, {"status": "REJECT", "state": pending("t-2")})  # another claim's Pending
    assert not accepted(sent, {"status": "ABORT", "state": pending("t-1")})
    assert not accepted(sent, {"status": "REJECT", "state": {**pending("t-1"), "type": "RUNNING"}})
    assert not accepted(pending(None), {"status": "REJECT", "state": pending(None)})  # no id: nothing to match
    assert not accepted(sent, {"status": "REJECT", "state": None})
    assert not accepted(sent, {})


def test_each_token_derives_its_own_transition_ids() -> None:
    sent = pending(str(uuid.uuid4()))
    mine, again = bind_transition(sent, HOST_A), bind_transition(sent, HOST_A)
    theirs = bind_transition(sent, HOST_B)
    ids = {s["state_details"]["transition_id"] for s in (sent, mine, theirs)}
    assert len(ids) == 3  # neither the host's id nor another token's
    assert again == mine  # the same claim sent again is the same transition
    # the id as stored (another host of the pool can read it) does not derive to itself for another token
    stored = mine["state_details"]["transition_id"]
    assert bind_transition(pending(stored), HOST_B)["state_details"]["transition_id"] != stored
    assert bind_transition({"type": "PENDING"}, HOST_A) == {"type": "PENDING"}  # nothing to bind
