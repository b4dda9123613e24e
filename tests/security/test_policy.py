"""Pool policy holds whatever a job spec, a template, a schedule or a run's job variables say:
omitted limits get the pool's defaults and meet its ceilings, networks are an allow-list,
pools say who may use them, root and GPUs have ceilings, files from the worker host need
an admin, and job variables never loosen a pool. Each refusal is checked through the API
(403 before anything is created) and, where a run can reach a worker another way, by the
worker itself (the job ends refused, naming the setting, and no container starts)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid

import anyio
import pytest
from prefect.client.orchestration import get_client

import swarmsync
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Principal
from swarmsync.client import APIError, Client
from swarmsync.connection import prefect_api
from swarmsync.deployments import pools
from swarmsync.deployments.pools import PolicyError, create_pool
from swarmsync.policy import HostPolicy, PolicyViolation
from swarmsync.spec import JobSpec
from tests.accounts.conftest import auth, later
from tests.waiting import wait_until

TIMEOUT_CEILING = 3.0


def _online(pool: str, name: str) -> bool:
    async def read():
        async with get_client() as client:
            return await client.read_workers_for_work_pool(pool)

    with prefect_api():
        return any(w.name == name and w.status and w.status.value == "ONLINE" for w in anyio.run(read))


@pytest.fixture(scope="module")
def pool(stack, busybox, tmp_path_factory):
    """This module's pool, with ceilings and defaults, for operators only (and admins), and one worker."""
    name = f"pol-{uuid.uuid4().hex[:8]}"
    create_pool(name, max_memory="256m", default_memory="64m", max_pids=100, default_pids_limit=50,
                max_timeout=TIMEOUT_CEILING, allowed_roles=["operator"])
    worker = f"w-{uuid.uuid4().hex[:6]}"
    log_path = tmp_path_factory.mktemp("policy-worker") / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarmsync.cli.main", "worker", "start", "--pool", name, "--name", worker],
            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or _online(name, worker), "the policy pool's worker online",
                   timeout=90)
        assert proc.poll() is None, log_path.read_text()
        yield name
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def idle_pool(stack):
    """A pool with no worker that allows host files (so that admins may use it): nothing created there runs."""
    name = f"idle-{uuid.uuid4().hex[:8]}"
    create_pool(name, allow_host_files=True)
    return name





def _accepted(api, response, headers) -> None:
    """A job the API created: it must have been (201); cancel it, it was only to see it accepted."""
    assert response.status_code == 201, response.text
    api.post(f"/jobs/{response.json()['id']}/cancel", headers=headers)


def _refused(response, *words: str) -> str:
    assert response.status_code == 403, f"{response.status_code}: {response.text}"
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


# --- omitted limits against ceilings --------------------------------------------------------------

def test_limits_over_a_ceiling_are_refused_at_submission_before_anything_is_created(api, operator, pool, busybox):
    account, headers = operator
    base = {"image": busybox, "command": "true", "pull_policy": "never"}
    for extra, setting in (({"memory": "1g"}, "max_memory"), ({"pids_limit": 500}, "max_pids"),
                           ({"timeout": 60}, "max_timeout")):
        before = len(swarmsync.list_jobs(limit=200))
        _refused(api.post("/jobs", json={"spec": {**base, **extra}, "pool": pool, "at": later()}, headers=headers),
                 setting)
        assert len(swarmsync.list_jobs(limit=200)) == before  # nothing was created
    denied = audit.events(actor=account.username, action="job.submit")[0]
    assert denied.outcome == "denied" and "max_timeout" in denied.detail["why"] and denied.target == pool


def test_what_is_checked_is_what_runs():
    """The one resolution both the check and container creation use: omitted limits never escape a ceiling."""
    policy = HostPolicy(max_memory="512m", default_memory="256m", max_pids=100, default_pids_limit=50,
                        max_timeout=60, max_cpu=2)
    ran = policy.check(JobSpec(image="busybox"))
    assert (ran.memory, ran.pids_limit, ran.timeout, ran.cpu) == ("256m", 50, 60, 2)
    assert policy.resolve(ran) == ran
    assert HostPolicy(max_memory="64m", default_memory="32m", max_pids=10).inconsistencies() == {
        "default_pids_limit": "1024 exceeds max_pids 10"}
    for user in ("root", "0", "0:0", "root:root", "00", "0:1000", "1000:0"):
        with pytest.raises(PolicyViolation, match="allow_root_user"):
            policy.check(JobSpec(image="busybox", user=user))
    policy.check(JobSpec(image="busybox", user="1000:1000"))


def test_a_job_that_omits_its_limits_runs_with_the_pools_defaults_and_its_timeout_ceiling(
    api, client_for, operator, pool, busybox, no_leftover_containers,
):
    _, headers = operator
    client = client_for(headers)
    job = client.submit(busybox, "sleep 30", pool=pool, pull_policy="never").wait(60)
    result = job.result()
    assert (job.status(), result.reason) == ("Failed", "timeout"), result.message  # max_timeout bounds it
    ran = result.manifest["spec"]  # what ran, as the archive records it
    assert (ran["memory"], ran["pids_limit"], ran["timeout"]) == ("64m", 50, TIMEOUT_CEILING)


def test_a_pool_whose_default_exceeds_its_ceiling_is_refused(api, role_tokens, stack):
    with pytest.raises(PolicyError, match="default_memory"):
        create_pool(f"bad-{uuid.uuid4().hex[:8]}", max_memory="64m")  # the built-in default is 1g
    name = f"ok-{uuid.uuid4().hex[:8]}"
    create_pool(name, max_timeout=60, default_timeout=30)
    headers = auth(role_tokens["admin"])
    lowered = api.patch(f"/pools/{name}", json={"max_pids": 10}, headers=headers)  # default_pids_limit is 1024
    assert lowered.status_code == 422 and "default_pids_limit" in lowered.json()["detail"], lowered.text
    shorter = api.patch(f"/pools/{name}", json={"max_timeout": 10}, headers=headers)
    assert shorter.status_code == 422 and "default_timeout" in shorter.json()["detail"], shorter.text
    assert pools.pool_policy(name)["max_pids"] is None and pools.pool_policy(name)["max_timeout"] == 60


# --- networks ----------------------------------------------------------------------------------------

def test_networks_are_an_allow_list_and_never_another_containers_namespace(api, operator, pool, busybox):
    _, headers = operator
    base = {"image": busybox, "command": "true", "pull_policy": "never"}
    for network, words in (("container:swarmsync-api", ("network namespace",)),
                           ("some-team-network", ("allowed_networks",)), ("host", ("allow_host_network",))):
        _refused(api.post("/jobs", json={"spec": {**base, "network": network}, "pool": pool, "at": later()},
                          headers=headers), *words)
    for network in ("none", "bridge"):
        _accepted(api, api.post("/jobs", json={"spec": {**base, "network": network}, "pool": pool,
                                               "at": later()}, headers=headers), headers)


def test_the_worker_refuses_a_container_network_that_reached_it_without_the_api(
    pool, busybox, docker_client, no_leftover_containers,
):
    victim = docker_client.containers.run(busybox, ["sleep", "60"], detach=True, remove=True)
    try:
        job = swarmsync.submit(busybox, "true", pool=pool, pull_policy="never",
                               network=f"container:{victim.id}").wait(60)
    finally:
        victim.kill()
    message = job.result().message
    assert job.status() == "Failed" and "network namespace" in message, message


# --- run-level job variables -------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["run", "deployment"])
def test_job_variables_of_a_run_or_deployment_cannot_loosen_the_pools_policy(pool, busybox, where,
                                                                             no_leftover_containers):
    from prefect.client.schemas.actions import DeploymentUpdate

    from swarmsync.worker import DEFINITION_CACHE_SECONDS

    loosened = {"allow_privileged": True, "max_memory": None}

    async def create():
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(f"container-job/{pool}")
            if where == "deployment":
                await client.update_deployment(deployment.id, DeploymentUpdate(
                    job_variables={**(deployment.job_variables or {}), **loosened}))
                await anyio.sleep(DEFINITION_CACHE_SECONDS + 1)  # the worker's cached read of it expires
            return deployment, await client.create_flow_run_from_deployment(
                deployment.id, parameters={"job": {"image": busybox, "command": "true", "pull_policy": "never",
                                                   "privileged": True}},
                job_variables=loosened if where == "run" else None)

    async def restore(deployment):
        async with get_client() as client:
            await client.update_deployment(deployment.id, DeploymentUpdate(job_variables=deployment.job_variables))

    with prefect_api():
        deployment, run = anyio.run(create)
    try:
        job = swarmsync.get_job(run.id).wait(60)
    finally:
        if where == "deployment":
            with prefect_api():
                anyio.run(restore, deployment)
    result = job.result()
    assert job.status() == "Failed" and result.reason == "refused", result.message
    # the policy refused it (nothing reached Docker: no engine message, and the run says why)
    assert result.message.startswith("refused: privileged containers are not allowed on this pool"), result.message
    # the worker's warning goes to Prefect's API in its log batches: a run refused this fast can end first
    wait_until(lambda: any("job variables cannot change the pool's policy" in m and "allow_privileged" in m
                           for _, _, m in job.logs()), "the worker's warning in the run's log", timeout=30)


# --- who may use a pool --------------------------------------------------------------------------------

def test_a_pool_is_used_only_by_those_on_its_list(api, client_for, make_user, stack, busybox):
    listed, other = make_user("operator"), make_user("operator")
    name = f"list-{uuid.uuid4().hex[:8]}"
    create_pool(name, allowed_users=[listed.username])
    spec = {"image": busybox, "command": "true", "pull_policy": "never"}
    other_headers = auth(other.login(api))
    _refused(api.post("/jobs", json={"spec": spec, "pool": name, "at": later()}, headers=other_headers),
             other.username, "allowed_users")
    with pytest.raises(APIError, match="403.*may not use this pool"):
        client_for(other_headers).submit(busybox, "true", pool=name, pull_policy="never", at=later())
    listed_headers = auth(listed.login(api))
    _accepted(api, api.post("/jobs", json={"spec": spec, "pool": name, "at": later()}, headers=listed_headers),
              listed_headers)


def test_a_privileged_pool_without_a_list_is_for_admins_only(api, operator, admin, stack, busybox):
    name = f"priv-{uuid.uuid4().hex[:8]}"
    create_pool(name, allow_privileged=True)
    spec = {"image": busybox, "command": "true", "pull_policy": "never"}
    _refused(api.post("/jobs", json={"spec": spec, "pool": name, "at": later()}, headers=operator[1]),
             "only admins")
    schedule = {"name": f"p-{uuid.uuid4().hex[:8]}", "every": "1h", "paused": True, "spec": spec, "pool": name}
    _refused(api.post("/schedules", json=schedule, headers=operator[1]), "only admins")
    _accepted(api, api.post("/jobs", json={"spec": spec, "pool": name, "at": later()}, headers=admin[1]), admin[1])


def test_the_worker_refuses_a_run_whose_submitter_may_not_use_the_pool(pool, make_user, busybox):
    viewer = make_user("viewer")  # the pool is for operators: a run recorded as a viewer's must not run

    async def create():
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(f"container-job/{pool}")
            return await client.create_flow_run_from_deployment(
                deployment.id, parameters={"job": {"image": busybox, "command": "true", "pull_policy": "never"}},
                tags=[f"swarmsync.user:{viewer.username}"], labels={"swarmsync.user": viewer.username})

    with prefect_api():
        run = anyio.run(create)
    job = swarmsync.get_job(run.id).wait(60)
    assert job.status() == "Failed" and "may not use this pool" in job.result().message, job.result().message


# --- host files through templates and schedules ---------------------------------------------------------

def _host_file_spec(busybox: str, tmp_path) -> dict:
    path = tmp_path / "host-file"
    path.write_bytes(b"on the worker host")
    return {"image": busybox, "command": "cat /in/x", "pull_policy": "never",
            "inputs": [{"path": "/in/x", "sha256": hashlib.sha256(b"on the worker host").hexdigest(),
                        "source": str(path)}]}


def test_host_files_through_a_template_need_an_admin(api, operator, admin, idle_pool, busybox, tmp_path):
    name = f"hf-{uuid.uuid4().hex[:8]}"
    saved = api.post("/templates", json={"name": name, "spec": _host_file_spec(busybox, tmp_path)},
                     headers=admin[1])
    assert saved.status_code == 201, saved.text
    try:
        schedule = {"name": f"s-{name}", "every": "1h", "paused": True, "template": name, "pool": idle_pool}
        _refused(api.post("/schedules", json=schedule, headers=operator[1]), "pools:manage")
        assert api.get(f"/schedules/s-{name}", headers=operator[1]).status_code == 404  # nothing was created
    finally:
        swarmsync.templates.delete_template(name)


def test_host_files_through_a_schedule_need_an_admin(api, operator, admin, idle_pool, busybox, tmp_path):
    name = f"hs-{uuid.uuid4().hex[:8]}"
    created = api.post("/schedules", json={"name": name, "every": "1h", "paused": True, "pool": idle_pool,
                                           "spec": _host_file_spec(busybox, tmp_path)}, headers=admin[1])
    assert created.status_code == 201, created.text
    # a maintainer of the project may run the admin's schedule, but not with host files
    projects.set_member(Principal.local(), "default", operator[0].username, "maintainer")
    try:
        _refused(api.post(f"/schedules/{name}/run", json={"at": later()}, headers=operator[1]), "pools:manage")
    finally:
        swarmsync.deployments.schedules.delete(name)


# --- root, GPUs ------------------------------------------------------------------------------------------

def test_root_is_refused_in_every_spelling_unless_the_pool_allows_it(api, operator, pool, busybox):
    _, headers = operator
    base = {"image": busybox, "command": "id", "pull_policy": "never"}
    for user in ("root", "0", "0:0", "root:root", "0:1000", "00", "1000:0"):
        _refused(api.post("/jobs", json={"spec": {**base, "user": user}, "pool": pool, "at": later()},
                          headers=headers), "allow_root_user")
    for user in ("+0", "-0", "+0:+0", "+00", " 0:1000"):  # spellings Docker reads oddly: refused as bad input
        response = api.post("/jobs", json={"spec": {**base, "user": user}, "pool": pool, "at": later()},
                            headers=headers)
        assert response.status_code == 422 and "user" in response.text, response.text
    _accepted(api, api.post("/jobs", json={"spec": {**base, "user": "1000:1000"}, "pool": pool, "at": later()},
                            headers=headers), headers)


def test_the_worker_refuses_root_that_reached_it_without_the_api(pool, busybox, no_leftover_containers):
    spec = JobSpec(image=busybox, command="id", pull_policy="never", user="0:0")  # submit's own `user` is the submitter
    job = swarmsync.submit(spec, pool=pool).wait(60)
    assert job.status() == "Failed" and "allow_root_user" in job.result().message, job.result().message


def test_gpu_counts_have_a_ceiling(api, admin, stack, busybox):
    name = f"gpu-{uuid.uuid4().hex[:8]}"
    create_pool(name, allow_gpu=True, max_gpus=1)
    spec = {"image": busybox, "command": "true", "pull_policy": "never"}
    for gpus in (2, "all"):
        _refused(api.post("/jobs", json={"spec": {**spec, "gpus": gpus}, "pool": name, "at": later()},
                          headers=admin[1]), "max_gpus")
    _accepted(api, api.post("/jobs", json={"spec": {**spec, "gpus": 1}, "pool": name, "at": later()},
                            headers=admin[1]), admin[1])


@pytest.fixture
def client_for(api):
    """swarmsync.Client over the in-process API (an httpx transport, no port); takes the auth headers."""

    def make(headers: dict[str, str]) -> Client:
        token = headers["Authorization"].removeprefix("Bearer ")
        return Client("http://testserver", token, transport=api._transport)

    return make


def test_limits_are_checked_by_the_python_client_path_too(client_for, operator, pool, busybox):
    with pytest.raises(APIError, match="403.*max_memory"):
        client_for(operator[1]).submit(busybox, "true", pool=pool, memory="2g", pull_policy="never", at=later())
