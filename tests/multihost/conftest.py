"""Real hosts on this machine (infra/hosts.py): a server host in the high-availability shape
(two Prefect API processes behind HAProxy, a services process, PostgreSQL, Redis, SFTP archive)
and three worker hosts, each with its own dockerd and SwarmSync worker:

- ss-w1: no labels;  ss-w2: gpu, region=eu;  ss-w3: region=eu;  each runs at most LIMIT jobs at once.

Built once for the package (`multihost_hosts`, 65-100 s on 2 cores) and torn down after its
last test, also when a test fails, so the rest of the suite does not run beside them.
Needs root (namespaces, dockerd), HAProxy and sshd (infra/host-setup.sh test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, clean_env

REPO = Path(__file__).resolve().parents[2]
HOSTS = [sys.executable, str(REPO / "infra" / "hosts.py")]
ROOT = Path(os.environ.get("SS_HOSTS_ROOT", "/var/lib/ss-hosts"))
LABELS = {"ss-w1": [], "ss-w2": ["gpu", "region=eu"], "ss-w3": ["region=eu"]}
LIMIT = 4
IMAGE = "swarmsync/busybox:local"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "multihost" in Path(str(item.path)).parts:
            item.add_marker(pytest.mark.multihost)
            item.add_marker(pytest.mark.docker)
            item.add_marker(pytest.mark.timeout(1200))  # building the hosts alone takes 3-5 min on 2 busy cores
        if item.get_closest_marker("multihost_full") and not os.environ.get("SWARMSYNC_TEST_MULTIHOST_FULL"):
            item.add_marker(pytest.mark.skip(reason="heavy multi-host test: SWARMSYNC_TEST_MULTIHOST_FULL=1 runs it"))


def hosts(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*HOSTS, *args], env=clean_env(), text=True, capture_output=True, check=check,
                          timeout=600)


def state() -> dict:
    return json.loads((ROOT / "state.json").read_text())


@pytest.fixture(scope="package")
def multihost_hosts() -> Iterator[dict]:
    if os.geteuid() != 0:
        pytest.fail("the multi-host tests need root (network namespaces, a dockerd per host)")
    labels = ";".join(f"{h}={','.join(ls)}" for h, ls in LABELS.items() if ls)
    try:
        done = hosts("up", "--workers", "3", "--ha", "2", "--labels", labels, "--limit", str(LIMIT), check=False)
        if done.returncode != 0:
            pytest.fail(f"infra/hosts.py up failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        yield state()
    finally:
        _keep_logs()
        hosts("down", check=False)


def _keep_logs() -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for log in [*ROOT.glob("*/logs/*.log"), *ROOT.glob("ss-server/swarmsync/logs/*.log")]:
        host = log.relative_to(ROOT).parts[0]  # ss-server, ss-w1, ...
        (ARTIFACTS / f"multihost-{host}-{log.name}").write_bytes(log.read_bytes()[-2_000_000:])


SERVER_CA = ROOT / "ss-server" / "swarmsync" / "tls" / "ca.pem"


def core_url() -> str:
    """The server host's API (HTTPS with the CA `up` made there)."""
    return f"{'https' if SERVER_CA.exists() else 'http'}://10.77.0.2:4280"


@pytest.fixture(scope="package")
def api(multihost_hosts):
    """The SwarmSync API of the server host, logged in as its admin (trusting the server's CA)."""
    from swarmsync.client import Client
    from swarmsync.settings import get_settings

    before = os.environ.get("SWARMSYNC_CA_FILE")
    if SERVER_CA.exists():
        os.environ["SWARMSYNC_CA_FILE"] = str(SERVER_CA)
        get_settings.cache_clear()
    try:
        yield Client.login(core_url(), "admin", multihost_hosts["server"]["admin_password"])
    finally:  # later packages (unit tests of TLS) must not inherit this host's CA
        if before is None:
            os.environ.pop("SWARMSYNC_CA_FILE", None)
        else:
            os.environ["SWARMSYNC_CA_FILE"] = before
        get_settings.cache_clear()


def on_host(host: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
            ) -> subprocess.CompletedProcess:
    """A command in a worker host's network namespace (behind its firewall), with only `env`."""
    base = {"PATH": os.environ["PATH"], "HOME": str(ROOT / host)}
    return subprocess.run(["ip", "netns", "exec", host, *args], env={**base, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def engine(host: str):
    """The Docker engine of a worker host."""
    import docker

    return docker.DockerClient(base_url=f"unix:///run/ss-hosts/{host}/docker.sock")


def worker_of(job) -> str | None:
    """The worker host that ran (or runs) a job: Prefect's worker label on its flow run."""
    return (job.row().flow_run.labels or {}).get("prefect.worker.name")


def runs_started(job) -> int:
    """How many times the job's flow run entered Running."""
    return sum(1 for _, type_, _, _ in job.states() if type_ == "RUNNING")
