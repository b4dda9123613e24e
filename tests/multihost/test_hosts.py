"""SwarmSync on real separate hosts (see conftest.py): jobs spread over three worker hosts,
archives read back from the server host, routing by host labels, cancel across hosts, a Prefect
API process killed during a burst, the services process restarted, a worker host lost mid-job.

CI runs the tests not marked `multihost_full` (spread with 30 jobs instead of 100, routing, cancel
across hosts: about 4 min with building the hosts); the HA kills and the lost host are full-only;
`SWARMSYNC_TEST_MULTIHOST_FULL=1` runs them all. The services restart comes last: once, a lost-host
test right after it saw no crash within 300 s (not reproduced: a host lost 5 s after a services
restart was detected in 50 s; Docket's redelivery of a killed process's in-flight perpetual tasks,
5 min, is a suspect)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.routing import queue_for
from tests.multihost.conftest import (
    IMAGE,
    LIMIT,
    ROOT,
    SERVER_CA,
    core_url,
    engine,
    hosts,
    runs_started,
    worker_of,
)
from tests.waiting import wait_until

SERVER_RUN = ROOT / "ss-server" / "swarmsync" / "run"


def wait_all(jobs, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for job in jobs:
        job.wait(max(1.0, deadline - time.monotonic()), poll=1)


def submit_all(api, n: int, command: str, **options):
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda i: api.submit(IMAGE, command.replace("{i}", str(i)), **options), range(n)))


def check_archive(api, job) -> None:
    """The manifest through the server's API, and every archived file downloaded with its SHA-256."""
    manifest = api.get_job(job.id).result().manifest
    files = manifest.get("files") or {}
    assert files, f"manifest without files: {manifest}"
    for name, entry in files.items():
        if name.endswith(".json") or not isinstance(entry, dict) or "sha256" not in entry:
            continue
        data = api.read_archive_file(job.id, name)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{job.id}/{name}: SHA-256 differs"


# 100 with SWARMSYNC_TEST_MULTIHOST_FULL=1 (about 4 min here); CI runs the same test with 30 (about 1.5 min)
SPREAD_JOBS = 100 if os.environ.get("SWARMSYNC_TEST_MULTIHOST_FULL") else 30


def test_100_jobs_across_3_hosts_run_once_with_archives_on_the_server(api, multihost_hosts):
    jobs = submit_all(api, SPREAD_JOBS, "echo job-{i}; sleep 1")
    wait_all(jobs)
    by_host: dict[str, int] = {}
    for job in jobs:
        assert job.status() == "Completed", f"{job.id}: {job.status()}"
        assert runs_started(job) == 1, f"{job.id} ran {runs_started(job)} times"
        host = worker_of(job)
        by_host[host] = by_host.get(host, 0) + 1
    assert set(by_host) == {"ss-w1", "ss-w2", "ss-w3"}, f"jobs per host: {by_host}"
    with ThreadPoolExecutor(6) as pool:  # every archive through the server's API, SHA-256s checked
        list(pool.map(lambda job: check_archive(api, job), jobs))
    assert api.read_archive_file(jobs[7].id, "stdout.txt") == b"job-7\n"


def test_jobs_requiring_labels_run_only_on_hosts_having_them(api, multihost_hosts):
    gpu = submit_all(api, 4, "echo gpu-{i}", queue=queue_for(["gpu"]))
    eu = submit_all(api, 3 * LIMIT, "sleep 3", queue=queue_for(["region=eu"]))
    both = submit_all(api, 2, "echo both-{i}", queue=queue_for(["gpu", "region=eu"]))
    wait_all(gpu + eu + both)
    assert {worker_of(j) for j in gpu + both} == {"ss-w2"}
    eu_hosts = [worker_of(j) for j in eu]
    assert set(eu_hosts) == {"ss-w2", "ss-w3"}, f"region=eu jobs ran on {eu_hosts}: not spread over both hosts"
    for host in ("ss-w2", "ss-w3"):  # per-host capacity: at most LIMIT of them at once on one host
        spans = [(j.row().started, j.row().ended) for j, h in zip(eu, eu_hosts, strict=True) if h == host]
        most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
        assert most <= LIMIT, f"{host} ran {most} jobs at once (limit {LIMIT})"
    assert all(j.status() == "Completed" for j in gpu + eu + both)


def test_cancel_from_another_host_stops_the_container_where_it_runs(api, multihost_hosts):
    job = api.submit(IMAGE, "echo started; sleep 300", queue=queue_for(["gpu"]))  # runs on ss-w2
    # the container's own output line: the flow's first log line ("job: IMAGE echo started; ...") names
    # the command before any container exists (CI once raced on a substring match of it)
    wait_until(lambda: any(name.endswith("stdout") and m == "started" for _, name, m in job.logs()),
               "the job's container printed 'started'", timeout=120)
    assert worker_of(job) == "ss-w2"
    containers = engine("ss-w2").containers.list(filters={"label": f"{LABEL_FLOW_RUN}={job.id}"})
    assert containers, "no container of the job on ss-w2's engine"
    # cancel from worker host ss-w3, with nothing of ss-w2 there: its own CLI through the server's API
    token = api.create_token("multihost-cancel", scopes=None)["token"]
    env = {"PATH": os.environ["PATH"], "HOME": str(ROOT / "ss-w3"), "SWARMSYNC_URL": core_url(),
           "SWARMSYNC_TOKEN": token, **({"SWARMSYNC_CA_FILE": str(SERVER_CA)} if SERVER_CA.exists() else {})}
    import sys

    done = subprocess.run(["ip", "netns", "exec", "ss-w3", sys.executable, "-m", "swarmsync.cli.main", "cancel",
                           job.id], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    job.wait(120, poll=1)
    assert job.status() == "Cancelled"
    wait_until(lambda: not engine("ss-w2").containers.list(filters={"label": f"{LABEL_FLOW_RUN}={job.id}"}),
               "the container on ss-w2 stopped", timeout=60)


def _kill_from_pidfile(name: str) -> int:
    pid = int((SERVER_RUN / f"{name}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.multihost_full
def test_a_prefect_api_process_killed_during_a_burst_loses_no_job(api, multihost_hosts):
    submitted: list = []
    errors: list[str] = []

    def burst() -> None:
        for i in range(40):
            try:
                submitted.append(api.submit(IMAGE, f"echo burst-{i}"))
            except Exception as exc:  # noqa: BLE001 - counted: a lost submission fails the test
                errors.append(repr(exc))

    thread = threading.Thread(target=burst)
    thread.start()
    wait_until(lambda: len(submitted) >= 10, "10 jobs submitted", timeout=120)
    killed = _kill_from_pidfile("prefect-api-1")
    thread.join(600)
    assert not errors, errors
    assert len(submitted) == 40
    wait_all(submitted)
    assert [j.status() for j in submitted] == ["Completed"] * 40
    assert all(runs_started(j) == 1 for j in submitted)
    ids = {j.id for j in submitted}
    assert len(ids) == 40
    # the server host's supervisor started the API process again
    wait_until(lambda: int((SERVER_RUN / "prefect-api-1.pid").read_text()) != killed,
               "prefect-api-1 restarted", timeout=120)


@pytest.mark.multihost_full
def test_a_lost_worker_host_crashes_its_jobs_which_retry_elsewhere_and_never_run_twice(api, multihost_hosts):
    jobs = submit_all(api, 2 * LIMIT, "echo started-{i}; sleep 25; echo done",
                      queue=queue_for(["region=eu"]), retries=1)
    wait_until(lambda: all(j.status() == "Running" for j in jobs), "all jobs running", timeout=180, poll=1)
    lost_host = worker_of(jobs[0])
    other = ({"ss-w2", "ss-w3"} - {lost_host}).pop()
    on_lost = [j for j in jobs if worker_of(j) == lost_host]
    lost_at = time.monotonic()
    hosts("lose", lost_host)
    wait_until(lambda: all(any(t == "CRASHED" for _, t, _, _ in j.states()) for j in on_lost),
               "the lost host's jobs crashed", timeout=300, poll=1)
    print(f"\nhost lost -> its jobs Crashed within {time.monotonic() - lost_at:.0f} s")
    wait_all(jobs, timeout=300)
    for job in on_lost:
        assert job.status() == "Completed"
        assert worker_of(job) == other, "the retry did not run on the other host"
    labels = "gpu,region=eu" if lost_host == "ss-w2" else "region=eu"
    done = hosts("add", lost_host, "--labels", labels, "--limit", str(LIMIT), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    before = {j.id: (runs_started(j), j.status()) for j in jobs}
    # the host that came back (online again: `add` waited for it) runs its recovery at every heartbeat
    # (PREFECT_WORKER_HEARTBEAT_SECONDS=5 on these hosts): give it a few, then nothing may have changed
    time.sleep(15)
    assert {j.id: (runs_started(j), j.status()) for j in jobs} == before
    assert not engine(lost_host).containers.list(filters={"label": "io.swarmsync.job"})


@pytest.mark.multihost_full
def test_restarting_the_services_process_loses_no_schedule_and_no_delayed_job(api, multihost_hosts):
    delayed = api.submit(IMAGE, "echo delayed", at=datetime.now(UTC) + timedelta(seconds=25))
    from swarmsync.spec import JobSpec

    api.create_schedule("mh-every", JobSpec(image=IMAGE, command="echo tick"), every="5s")
    try:
        killed = _kill_from_pidfile("prefect-services")
        wait_until(lambda: int((SERVER_RUN / "prefect-services.pid").read_text()) != killed,
                   "the services process restarted", timeout=120)
        restarted = datetime.now(UTC)
        delayed.wait(180, poll=1)
        assert delayed.status() == "Completed"

        def ticks_after_restart() -> int:
            rows = api.list_jobs(limit=100)
            return sum(1 for r in rows if r.command == "echo tick" and r.state == "Completed"
                       and r.scheduled and r.scheduled > restarted)

        wait_until(ticks_after_restart, "a scheduled run due after the restart completed", timeout=180, poll=2)
        # the restarted services process schedules: Prefect's scheduler service makes the runs of a
        # schedule created now (the API does not)
        api.create_schedule("mh-after", JobSpec(image=IMAGE, command="echo after"), every="5s")
        wait_until(lambda: any(r.command == "echo after" and r.state == "Completed" for r in api.list_jobs(limit=100)),
                   "a run of a schedule created after the restart completed", timeout=180, poll=2)
    finally:
        for name in ("mh-every", "mh-after"):
            try:
                api.change_schedule(name, "delete")
            except Exception:  # noqa: BLE001 - mh-after may not exist when the test failed before it
                pass
