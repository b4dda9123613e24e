"""Core notices a lost host by itself, fences a cut-off one, and no job runs twice (issue 25), on real
hosts: the pool's only host killed mid-job, a host partitioned for longer than its lease, 300 Running
runs of a silent host, 500 jobs no host can take, and the SwarmSync API killed during a burst.

Bound and lease are the defaults: SWARMSYNC_LOST_WORKER_SECONDS=90 (Core), SWARMSYNC_HOST_LEASE_SECONDS=75
(worker hosts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.routing import queue_for
from tests.multihost.conftest import (
    HOSTS,
    IMAGE,
    ROOT,
    SERVER_CA,
    core_url,
    engine,
    hosts,
    on_host,
    runs_started,
    worker_of,
)
from tests.waiting import wait_until

BOUND, LEASE = 90.0, 75.0
SERVER_RUN = ROOT / "ss-server" / "swarmsync" / "run"


def started(job) -> bool:
    return any(n.endswith("stdout") and m == "started" for _, n, m in job.logs())


def crashed_states(job) -> list[tuple]:
    return [s for s in job.states() if s[1] == "CRASHED"]


def admin_python(code: str, *args: str) -> str:
    """Python on this machine as the server's admin (Prefect's auth string, the database): set-up only."""
    env = json.loads(subprocess.run([*HOSTS, "env", "--json"], capture_output=True, text=True, check=True).stdout)
    done = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.multihost_full
def test_the_pools_only_host_lost_mid_job_is_crashed_within_the_bound_and_retried_on_a_host_that_joins(
        api, multihost_hosts):
    added = hosts("add", "ss-w4", "--pool", "solo", "--limit", "2", check=False)
    assert added.returncode == 0, added.stderr[-3000:]
    job = api.submit(IMAGE, "echo started; sleep 40; echo done", pool="solo", retries=1)
    wait_until(lambda: started(job), "the job started on ss-w4", timeout=120)
    assert worker_of(job) == "ss-w4"
    lost_at = time.monotonic()
    hosts("lose", "ss-w4")
    wait_until(lambda: crashed_states(job), "the job crashed", timeout=BOUND + 60, poll=1)
    detected = time.monotonic() - lost_at
    assert detected <= BOUND + 3, f"crashed {detected:.0f} s after the host was lost (bound {BOUND:g} s)"
    assert crashed_states(job)[0][3] == "host ss-w4 lost"
    assert job.status() == "AwaitingRetry"
    try:
        joined = hosts("add", "ss-w5", "--pool", "solo", "--limit", "2", check=False)
        assert joined.returncode == 0, joined.stderr[-3000:]
        job.wait(240, poll=1)
        assert job.status() == "Completed" and worker_of(job) == "ss-w5"
        assert api.read_archive_file(job.id, "stdout.txt").decode().split() == ["started", "done"]
    finally:
        hosts("lose", "ss-w5", check=False)
    print(f"\nthe pool's only host lost -> its job Crashed within {detected:.0f} s (bound {BOUND:g} s)")


@pytest.mark.multihost_full
def test_a_partitioned_host_stops_its_job_before_core_retries_it_and_the_job_completes_exactly_once(
        api, multihost_hosts):
    # longer than the lease: still running on the cut-off host when its lease runs out (a job that ends during
    # the cut, before the lease, cannot report; Core then runs it again, as Prefect would retry a lost run)
    job = api.submit(IMAGE, "echo started; sleep 100; echo done", queue=queue_for(["region=eu"]), retries=1)
    wait_until(lambda: started(job), "the job started", timeout=120)
    host = worker_of(job)
    other = ({"ss-w2", "ss-w3"} - {host}).pop()
    since = int(time.time()) - 5
    link = f"{host}-n"
    assert on_host(host, "ip", "link", "set", link, "down").returncode == 0
    cut_at = time.monotonic()
    try:
        wait_until(lambda: crashed_states(job), "Core crashed the cut-off host's run", timeout=BOUND + 60, poll=1)
        wait_until(lambda: time.monotonic() - cut_at > LEASE + 25, "a cut longer than the lease", timeout=120)
    finally:
        assert on_host(host, "ip", "link", "set", link, "up").returncode == 0
        on_host(host, "ip", "route", "replace", "10.77.0.0/24", "dev", link)
    job.wait(300, poll=1)
    assert job.status() == "Completed" and worker_of(job) == other
    time.sleep(15)  # the host that came back has reported whatever it would
    crashed_at = crashed_states(job)[0][0].timestamp()
    until = int(time.time())
    deaths = {h: [e for e in engine(h).events(decode=True, since=since, until=until,
                                              filters={"event": "die", "label": f"{LABEL_FLOW_RUN}={job.id}"})]
              for h in ("ss-w1", "ss-w2", "ss-w3")}
    completed = [(h, e) for h, es in deaths.items() for e in es if e["Actor"]["Attributes"].get("exitCode") == "0"]
    assert len(completed) == 1 and completed[0][0] == other, f"containers that ran to the end: {completed}"
    stopped = deaths[host]
    assert stopped and all(e["time"] < crashed_at for e in stopped), \
        f"the cut-off host's container stopped at {[e['time'] for e in stopped]}, Core crashed the run at {crashed_at}"
    assert [s[1] for s in job.states()].count("COMPLETED") == 1
    assert runs_started(job) == 2
    assert api.read_archive_file(job.id, "stdout.txt").decode().split() == ["started", "done"]
    assert (ROOT / host / "swarmsync" / "spool" / job.id / "SUPERSEDED").exists()


def test_a_backlog_no_host_can_take_does_not_stop_other_jobs(api, multihost_hosts):
    """500 jobs for a label no host has, in a queue an admin put first (priority 1: Prefect answers a poll
    with the runs of higher-priority queues first, a page of 200 at most): the other jobs still run."""
    admin_python("""
import sys
import anyio
import swarmsync
from prefect.client.orchestration import get_client
from swarmsync.connection import prefect_api
from swarmsync.spec import JobSpec

async def first_queue():
    async with get_client() as client:
        await client.create_work_queue(name="host:tpu", work_pool_name="swarmsync", priority=1)

with prefect_api():
    anyio.run(first_queue)
specs = [JobSpec(image=sys.argv[1], command="echo never", tags=["backlog"]) for _ in range(500)]
made = [s for s in swarmsync.submit_many(specs, queue="host:tpu", concurrency=8) if s.job]
assert len(made) == 500, len(made)
""", IMAGE)
    jobs = [api.submit(IMAGE, f"echo after-backlog-{i}") for i in range(12)]
    deadline = time.monotonic() + 180
    for job in jobs:
        job.wait(max(1.0, deadline - time.monotonic()), poll=1)
    assert [j.status() for j in jobs] == ["Completed"] * 12


@pytest.mark.multihost_full
def test_300_running_runs_of_a_silent_host_are_all_crashed(multihost_hosts):
    """A host (a worker token) that claimed 300 runs and set them Running through Core's gateway, then went
    silent: Core crashes every one of them within the bound (not the first 200)."""
    out = admin_python("""
import json, sys, uuid
import swarmsync
from swarmsync.auth import worker_tokens
from swarmsync.connection import prefect_api
from swarmsync.deployments.pools import create_pool
from swarmsync.spec import JobSpec
with prefect_api():
    create_pool("ghost")
token = worker_tokens.create("test", "ghost-host-" + uuid.uuid4().hex[:4], "ghost").token
specs = [JobSpec(image=sys.argv[1], command="sleep 1000") for _ in range(300)]
made = [str(s.job.id) for s in swarmsync.submit_many(specs, pool="ghost", concurrency=8) if s.job]
print(json.dumps({"token": token, "ids": made}))
""", IMAGE)
    setup = json.loads(out.strip().splitlines()[-1])
    assert len(setup["ids"]) == 300
    verify = str(SERVER_CA) if SERVER_CA.exists() else True
    with httpx.Client(base_url=core_url() + "/worker/prefect/api", verify=verify, timeout=60,
                      headers={"Authorization": f"Bearer {setup['token']}"}) as gw:
        for run_id in setup["ids"]:
            for state in ("PENDING", "RUNNING"):
                answer = gw.post(f"flow_runs/{run_id}/set_state", json={"state": {"type": state}})
                assert answer.status_code in (200, 201) and answer.json()["status"] == "ACCEPT", answer.text
    silent_at = time.monotonic()
    code = """
import json, sys
import anyio
from prefect.client.orchestration import get_client
from swarmsync.connection import prefect_api
async def states():
    async with get_client() as client:
        runs = []
        for start in range(0, 300, 200):
            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
            ids = json.loads(sys.argv[1])[start:start + 200]
            runs += await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        return [(r.state.type.value, r.state.message) for r in runs]
with prefect_api():
    print(json.dumps(anyio.run(states)))
"""

    def all_crashed() -> bool:
        seen = json.loads(admin_python(code, json.dumps(setup["ids"])).strip().splitlines()[-1])
        return len(seen) == 300 and all(t == "CRASHED" for t, _ in seen)

    wait_until(all_crashed, "all 300 runs crashed", timeout=BOUND + 90, poll=3)
    # detected within the bound; crashing and re-queueing 300 runs (900 Prefect calls, 16 at once) takes
    # another ~20 s on this 2-core machine (measured: first at 85 s, last at 107 s after the host fell silent)
    assert time.monotonic() - silent_at <= BOUND + 45


def test_the_swarmsync_api_killed_during_a_burst_is_restarted_by_up_and_no_job_is_lost(api, multihost_hosts):
    jobs, failures = [], []

    def burst() -> None:
        for i in range(30):
            for _attempt in range(60):
                try:
                    jobs.append(api.submit(IMAGE, f"echo burst-{i}; sleep 2"))
                    break
                except (httpx.HTTPError, OSError) as exc:  # the API is down for a moment: submit again
                    failures.append(repr(exc))
                    time.sleep(1)

    thread = threading.Thread(target=burst)
    thread.start()
    wait_until(lambda: len(jobs) >= 5, "the first submissions", timeout=60)
    pid = int((SERVER_RUN / "api.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (SERVER_RUN / "api.pid").exists() and int((SERVER_RUN / "api.pid").read_text()) != pid,
               "up started the API again", timeout=60)
    thread.join(300)
    assert len(jobs) == 30, f"{len(jobs)} submitted; errors: {failures[-3:]}"
    deadline = time.monotonic() + 300
    for job in jobs:
        job.wait(max(1.0, deadline - time.monotonic()), poll=1)
    assert [j.status() for j in jobs] == ["Completed"] * 30
    assert b"api exited" in Path(ROOT / "ss-server" / "logs" / "up.log").read_bytes()
