"""A worker token (issue 24) serves its pool's runs through Core's gateway and can do nothing else: each
forbidden call is made with a real token against the real API and Prefect, and refused.

Pool A is the session stack's pool (its worker runs jobs); pool B is made here with no worker, so a job of B
stays Scheduled until a token of B claims it through the gateway.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

import swarmsync
from swarmsync.settings import get_settings
from tests.accounts.conftest import auth
from tests.workers import read_flow_run


def gw(api, token: str, method: str, path: str, body: Any = None):
    return api.request(method, f"/worker/prefect/api/{path}", json=body, headers=auth(token))


@pytest.fixture
def admin_session(api, make_user) -> str:
    return make_user("admin").login(api)


@pytest.fixture
def pools(api, admin_session, busybox, stack) -> dict[str, Any]:
    """Pool A (the stack's) with a finished job; pool B (new, no worker) with a waiting job that has a secret;
    a token for each."""
    from swarmsync.connection import prefect_api
    from swarmsync.deployments.pools import create_pool

    pool_a, pool_b = get_settings().work_pool, f"tokpool-{uuid.uuid4().hex[:6]}"
    with prefect_api():
        create_pool(pool_b)
    done = swarmsync.submit(busybox, "echo done-in-a", pull_policy="never")
    waiting = swarmsync.submit(busybox, "echo $TOKEN", pool=pool_b, pull_policy="never",
                               secret_env={"TOKEN": "b-s3cret"})
    tokens = {}
    for pool in (pool_a, pool_b):
        made = api.post("/worker-tokens", json={"name": f"t-{uuid.uuid4().hex[:8]}", "pool": pool},
                        headers=auth(admin_session))
        assert made.status_code == 201, made.text
        assert made.json()["command"].startswith("swarmsync worker start --server ")
        assert made.json()["command"].split()[-1].startswith(("ssw_", "sha256:"))
        tokens[pool] = made.json()
    done.wait(120)
    secret_block = read_flow_run(waiting.id).parameters["job"]["secrets"]["TOKEN"]
    yield {"a": pool_a, "b": pool_b, "done": done.id, "waiting": waiting.id, "secret": secret_block,
           "token_a": tokens[pool_a]["token"], "token_b": tokens[pool_b]["token"], "names": tokens}
    waiting.cancel()


def test_a_token_reads_and_changes_only_its_own_pools_runs(api, pools):
    a, b = pools["token_a"], pools["token_b"]
    # the run of pool A is not there for pool B's token: read, state change, logs, owner, outcome
    assert gw(api, b, "GET", f"flow_runs/{pools['done']}").status_code == 404
    moved = gw(api, b, "POST", f"flow_runs/{pools['done']}/set_state", {"state": {"type": "CANCELLED"}, "force": True})
    assert moved.status_code == 404, moved.text
    assert read_flow_run(pools["done"]).state.type.value == "COMPLETED"
    log = {"name": "x", "level": 20, "message": "forged", "timestamp": "2026-01-01T00:00:00Z",
           "flow_run_id": pools["done"]}
    assert gw(api, b, "POST", "logs/", [log]).status_code == 404
    assert api.get(f"/worker/runs/{pools['done']}/owner", headers=auth(b)).status_code == 404
    assert api.get(f"/worker/runs/{pools['done']}/outcome", headers=auth(b)).status_code == 404
    # listing runs is narrowed to the token's pool, whatever the filter asks
    listed = gw(api, b, "POST", "flow_runs/filter", {"work_pools": {"name": {"any_": [pools["a"]]}}, "limit": 200})
    assert listed.status_code == 200 and pools["done"] not in {r["id"] for r in listed.json()}
    assert pools["waiting"] in {r["id"] for r in listed.json()}
    # another pool, its poll and its workers
    assert gw(api, b, "GET", f"work_pools/{pools['a']}").status_code == 404
    assert gw(api, b, "POST", f"work_pools/{pools['a']}/get_scheduled_flow_runs", {}).status_code == 404
    assert gw(api, b, "POST", f"work_pools/{pools['a']}/workers/heartbeat", {"name": "x"}).status_code == 404
    # the same calls on its own pool are served
    assert gw(api, a, "GET", f"flow_runs/{pools['done']}").status_code == 200
    assert gw(api, b, "GET", f"work_pools/{pools['b']}").status_code == 200
    owner = api.get(f"/worker/runs/{pools['done']}/owner", headers=auth(a))
    assert owner.status_code == 200, owner.text


def test_a_token_reads_the_states_of_its_own_pools_runs_only(api, pools):
    """A worker whose claim was accepted from a final state (a stale listing: another host ran the run) reads the
    run's states to put the final one back (swarmsync/claim.py). Through the gateway that read was refused, and the
    worker host died of it (the multihost burst with a Prefect API process killed)."""
    a, b, done = pools["token_a"], pools["token_b"], pools["done"]
    states = gw(api, a, "GET", f"flow_run_states/?flow_run_id={done}")
    assert states.status_code == 200, states.text
    assert "COMPLETED" in {state["type"] for state in states.json()}
    assert gw(api, b, "GET", f"flow_run_states/?flow_run_id={done}").status_code == 404
    assert gw(api, a, "GET", "flow_run_states/").status_code == 403
    assert gw(api, a, "GET", f"flow_run_states/?flow_run_id={done}&flow_run_id={pools['waiting']}").status_code == 403


def test_a_token_reads_only_the_secrets_of_runs_it_claimed(api, pools):
    a, b = pools["token_a"], pools["token_b"]
    path = f"block_types/slug/secret/block_documents/name/{pools['secret']}?include_secrets=true"
    assert gw(api, b, "GET", path).status_code == 404  # pool B's run, not claimed yet
    assert gw(api, a, "GET", path).status_code == 404  # another pool's run
    claimed = gw(api, b, "POST", f"flow_runs/{pools['waiting']}/set_state", {"state": {"type": "PENDING"}})
    assert claimed.status_code in (200, 201) and claimed.json()["status"] == "ACCEPT", claimed.text
    read = gw(api, b, "GET", path)
    assert read.status_code == 200, read.text
    assert read.json()["data"]["value"] == "b-s3cret"
    assert gw(api, a, "GET", path).status_code == 404  # still not pool A's


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "flow_runs/", {"flow_id": str(uuid.uuid4())}),
    ("POST", "deployments/", {"name": "x", "flow_id": str(uuid.uuid4())}),
    ("POST", f"deployments/{uuid.uuid4()}/create_flow_run", {}),
    ("POST", "work_pools/", {"name": "mine"}),
    ("PATCH", "work_pools/{a}", {"base_job_template": {}}),
    ("POST", "block_documents/filter", {}),
    ("DELETE", "admin/database", None),
    ("POST", "variables/", {"name": "x", "value": "y"}),
])
def test_a_token_cannot_create_runs_deployments_or_reach_admin_calls(api, pools, method, path, body):
    refused = gw(api, pools["token_a"], method, path.format(a=pools["a"]), body)
    assert refused.status_code == 403, refused.text
    assert "may not call" in refused.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/users", None), ("GET", "/tokens", None), ("GET", "/worker-tokens", None), ("GET", "/audit", None),
    ("POST", "/jobs", {"image": "busybox", "command": "true"}), ("PATCH", "/pools/swarmsync", {}),
    ("GET", "/jobs", None), ("GET", "/me", None),
])
def test_a_token_is_no_users_token(api, pools, method, path, body):
    refused = api.request(method, path, json=body, headers=auth(pools["token_a"]))
    assert refused.status_code == 401, refused.text


def test_revoked_and_expired_tokens_are_refused(api, admin_session, pools, make_user):
    name = pools["names"][pools["a"]]["name"]
    assert api.get("/worker/whoami", headers=auth(pools["token_a"])).json()["pool"] == pools["a"]
    listed = {t["name"]: t for t in api.get("/worker-tokens", headers=auth(admin_session)).json()}
    assert listed[name]["last_seen_at"] is not None and not listed[name]["revoked"]
    revoked = api.delete(f"/worker-tokens/{name}", headers=auth(admin_session))
    assert revoked.status_code == 200 and revoked.json()["revoked"], revoked.text
    refused = api.get("/worker/whoami", headers=auth(pools["token_a"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert gw(api, pools["token_a"], "GET", "health").status_code == 401
    short = api.post("/worker-tokens", json={"name": f"t-{uuid.uuid4().hex[:8]}", "pool": pools["a"],
                                             "expires": "1s"}, headers=auth(admin_session)).json()
    time.sleep(1.5)
    expired = api.get("/worker/whoami", headers=auth(short["token"]))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    # only admins make them; a user's session is no worker token
    operator = make_user("operator").login(api)
    assert api.post("/worker-tokens", json={"name": "nope"}, headers=auth(operator)).status_code == 403
    assert api.get("/worker/whoami", headers=auth(operator)).status_code == 401
    # bad input
    assert api.post("/worker-tokens", json={"name": "bad name!"}, headers=auth(admin_session)).status_code == 400
    assert api.post("/worker-tokens", json={"name": "x1", "pool": "no-such-pool"},
                    headers=auth(admin_session)).status_code == 404
    assert api.post("/worker-tokens", json={"name": name}, headers=auth(admin_session)).status_code == 409



def test_a_claim_is_bound_to_the_token_that_made_it(api, admin_session, pools):
    """A claim whose answer was lost (a Prefect replica died, tests/security/test_faults.py) is sent again
    by Prefect's client with the same transition id; Prefect rejects the duplicate with the run's Pending,
    and Core takes that as the claim accepted: the token holds the run. Core derives the transition id of a
    claim from the token, so another token of the pool that sends the same claim, or the Pending's id as
    stored (it can read the run), holds nothing."""
    from swarmsync.auth import worker_tokens

    b, run = pools["token_b"], pools["waiting"]
    made = api.post("/worker-tokens", json={"name": f"t-{uuid.uuid4().hex[:8]}", "pool": pools["b"]},
                    headers=auth(admin_session))
    assert made.status_code == 201, made.text
    other = made.json()["token"]
    sent = str(uuid.uuid4())

    def claim(transition: str) -> dict:
        return {"state": {"type": "PENDING", "state_details": {"transition_id": transition}}}

    first = gw(api, b, "POST", f"flow_runs/{run}/set_state", claim(sent))
    assert first.status_code in (200, 201) and first.json()["status"] == "ACCEPT", first.text
    stored = str(read_flow_run(run).state.state_details.transition_id)
    assert stored not in (sent, "None"), stored  # the token's own
    # the other host sends the same claim, and one with the stored id: aborted (Pending already), holds nothing
    for transition in (sent, stored):
        again = gw(api, other, "POST", f"flow_runs/{run}/set_state", claim(transition))
        assert again.json()["status"] == "ABORT", again.text
    running = {"state": {"type": "RUNNING"}}
    assert gw(api, other, "POST", f"flow_runs/{run}/set_state", running).status_code == 409
    # Core never saw the first claim accepted (its answer lost on the way from Prefect): the host's claim sent
    # again is rejected as a duplicate with the run's Pending, and Core records the claim
    worker_tokens.forget_claims([run])
    assert gw(api, b, "POST", f"flow_runs/{run}/set_state", running).status_code == 409
    again = gw(api, b, "POST", f"flow_runs/{run}/set_state", claim(sent))
    assert again.json()["status"] == "REJECT" and again.json()["state"]["type"] == "PENDING", again.text
    moved = gw(api, b, "POST", f"flow_runs/{run}/set_state", running)
    assert moved.status_code in (200, 201) and moved.json()["status"] == "ACCEPT", moved.text
