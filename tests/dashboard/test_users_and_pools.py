"""Who submitted each job (Jobs page column and filter), and pool policy edited by admins on the
Workers page, in AppTest against the real stack and its API process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from swarmsync.auth import audit
from swarmsync.client import APIError
from swarmsync.settings import get_settings
from tests.dashboard.conftest import texts
from tests.dashboard.test_pages import SUBMIT, fill, open_job
from tests.waiting import wait_until


def test_the_jobs_page_shows_who_submitted_each_job_and_filters_by_user(app_as, busybox, no_leftover_containers):
    alice, a = app_as("operator")
    alice.switch_page("views/submit.py").run()
    fill(alice, image=busybox, command="echo by-a", tags="by-user")
    alice.button(key=SUBMIT).click().run()
    mine = alice.session_state["submitted_job"]
    bob_app, bob = app_as("operator")
    bob_client = bob_app.session_state["client"]
    theirs = bob_client.submit(busybox, "echo by-b", pull_policy="never", tags=["by-user"])
    for job_id in (mine, theirs.id):
        bob_client.get_job(job_id).wait(120)

    viewer, _ = app_as("viewer")
    viewer.switch_page("views/jobs.py").run()
    table = viewer.dataframe[0].value
    users = dict(zip(table["id"], table["user"], strict=True))
    assert users[mine] == a.username and users[theirs.id] == bob.username
    viewer.text_input(key="filter_user").input(a.username).run()
    table = viewer.dataframe[0].value
    assert list(table["id"]) == [mine] and set(table["user"]) == {a.username}
    open_job(viewer, mine)
    assert f"**Submitted by:** {a.username}" in texts(viewer)


def _worker_heartbeat_after(client, pool: str, moment: datetime) -> bool:
    [described] = [p for p in client.pools() if p["name"] == pool]
    return any(w["last_heartbeat"] and datetime.fromisoformat(w["last_heartbeat"]) > moment
               for w in described["workers"])


@pytest.fixture
def default_pool_policy(stack):
    """The default pool's policy is restored after the test (the session's other tests share the pool)."""
    from swarmsync.deployments import pools

    name = get_settings().work_pool
    before = pools.pool_policy(name)
    yield name
    pools.update_policy(name, **{k: before[k] for k in ("max_memory", "max_cpu", "default_memory") if k in before})


def test_an_admin_lowers_a_pools_ceiling_and_a_job_over_it_is_refused_naming_the_limit(
    app_as, api_client, default_pool_policy, busybox, no_leftover_containers,
):
    pool = default_pool_policy
    at, admin = app_as("admin")
    at.switch_page("views/workers.py").run()
    assert not at.exception
    for name in ("max_gpus", "max_output_bytes", "max_files_bytes", "default_timeout", "allowed_projects"):
        assert at.text_input(key=f"policy_{pool}_{name}")  # every HostPolicy setting (swarmsync/catalogue.py)
    for name in ("allow_host_files", "allow_root_user"):
        assert at.checkbox(key=f"policy_{pool}_{name}")
    at.text_input(key=f"policy_{pool}_max_memory").input("96m")
    at.text_input(key=f"policy_{pool}_default_memory").input("64m")  # a default above the ceiling is refused
    at.button(key=f"FormSubmitter:policy_{pool}-Save policy").click().run()
    assert not at.exception
    assert at.session_state[f"policy_errors_{pool}"] == {}
    assert "Saved default_memory, max_memory." in texts(at)
    changed = datetime.now(UTC)
    policy = [p for p in api_client.pools() if p["name"] == pool][0]["policy"]
    assert policy["max_memory"] == "96m"
    assert at.text_input(key=f"policy_{pool}_max_memory").value == "96m"
    entry = audit.events(actor=admin.username, action="pool.update")[0]
    assert entry.target == pool and entry.detail == {"changes": {"max_memory": "96m", "default_memory": "64m"}}

    wait_until(lambda: _worker_heartbeat_after(api_client, pool, changed + timedelta(seconds=1)),
               "the worker's next heartbeat (when it reads the pool again)", timeout=120)
    with pytest.raises(APIError, match="403.*max_memory 96m"):  # refused by the API before anything is created
        api_client.submit(busybox, "echo too big", memory="128m", pull_policy="never")
    assert api_client.submit(busybox, "echo fits", memory="64m", pull_policy="never").wait(120).status() == "Completed"


def test_invalid_policy_values_show_an_error_beside_their_field_and_change_nothing(app_as, default_pool_policy):
    pool = default_pool_policy
    at, _ = app_as("admin")
    at.switch_page("views/workers.py").run()
    at.text_input(key=f"policy_{pool}_max_memory").input("lots")
    at.text_input(key=f"policy_{pool}_max_cpu").input("-2")
    at.text_input(key=f"policy_{pool}_max_pids").input("many")
    at.button(key=f"FormSubmitter:policy_{pool}-Save policy").click().run()
    assert not at.exception
    errors = at.session_state[f"policy_errors_{pool}"]
    assert errors == {"max_pids": "'many' is not a whole number"}  # caught in the form: nothing sent yet
    at.text_input(key=f"policy_{pool}_max_pids").input("")
    at.button(key=f"FormSubmitter:policy_{pool}-Save policy").click().run()
    errors = at.session_state[f"policy_errors_{pool}"]
    assert set(errors) == {"max_memory", "max_cpu"}  # refused by the API (422), each beside its field
    assert "memory 'lots' is not understood" in errors["max_memory"]
    assert "greater than 0" in errors["max_cpu"]
    shown = [e.value for e in at.error]
    assert errors["max_memory"] in shown and errors["max_cpu"] in shown
    policy = [p for p in at.session_state["client"].pools() if p["name"] == pool][0]["policy"]
    assert policy["max_memory"] != "lots" and policy["max_cpu"] != -2


def test_below_admin_the_policy_is_read_only_and_the_api_refuses_changes(app_as, default_pool_policy):
    pool = default_pool_policy
    operator, account = app_as("operator")
    operator.switch_page("views/workers.py").run()
    assert "(read-only)" in texts(operator)
    assert not [w for w in operator.text_input if w.key.startswith("policy_")]
    with pytest.raises(APIError, match="403.*pools:manage") as refused:
        operator.session_state["client"].update_pool(pool, max_memory="1t")
    assert refused.value.status == 403
    denied = audit.events(actor=account.username)[0]
    assert denied.outcome == "denied" and denied.action == f"PATCH /pools/{pool}"
