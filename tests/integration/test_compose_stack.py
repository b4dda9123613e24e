"""The compose stack of infra/compose/ on this machine's Docker engine, built without a registry,
driven the way docs/deployment.md tells an admin to.

The images are built once per session (infra/image/build.sh; the debootstrapped base and the
wheels are cached under /var/cache/swarmsync). A copy of infra/compose/ in a temporary folder is
prepared with `bash setup.sh` (.env from .env.example, secrets/ as files) and the admin's edits
(a project name, ports and a subnet of its own); then every command is run there as documented,
`docker-compose ...` with no -f, -p or --env-file (COMPOSE_FILE and COMPOSE_PROJECT_NAME come from .env):

1. `up -d` (Prefect in one process, with the worker of worker.yaml): every container healthy, no
   password in any container's configuration, the worker named after the Docker host; the API serves
   HTTPS with the CA it made in its `tls` volume (fetched as the doc says; a client without it is
   refused); from outside (the published API port) the first admin (password from secrets/admin_password)
   makes a user who runs a job and downloads its output; the dashboard's and a host proxy's X-Forwarded-For
   are believed with no edit (trusted subnet); `doctor` green (in the API's container, which
   has no Docker socket, and through the API); the documented `down` works.
2. Prefect's high-availability shape (COMPOSE_PROFILES=ha in .env) with the worker: the data is
   still there; a burst of jobs while one API replica's process is killed (SIGKILL of its main
   process, not `docker kill`): every job completes, none takes more than 10 s longer than the
   median, and the restart policy brings the replica back healthy.
3. The backup snippet of the doc, run as written; the stack removed with its volumes (`down -v`);
   the restore snippet, run as written, into the fresh stack: the users, the jobs and their archives
   are there, the API's CA is the one clients already trust, and a new job runs.

Needs root (debootstrap, apt-get) on Debian with a Docker engine; installs docker-compose and
debootstrap when missing. Skipped elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from swarmsync.client import Client
from tests.conftest import ARTIFACTS, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "infra" / "compose"
BUILD = ROOT / "infra" / "image" / "build.sh"
DOC = ROOT / "docs" / "deployment.md"

pytestmark = [
    # In make test and CI: 6-9 min with the base image and wheels cached (the images' build ~1 min of
    # it), ~4 more on a fresh machine (debootstrap, wheels). SWARMSYNC_TEST_COMPOSE_STACK=0 skips it.
    pytest.mark.skipif(os.environ.get("SWARMSYNC_TEST_COMPOSE_STACK") == "0",
                       reason="SWARMSYNC_TEST_COMPOSE_STACK=0"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("apt-get"), reason="needs root on Debian (debootstrap)"),
    pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client and engine"),
    pytest.mark.docker,
    pytest.mark.timeout(1800),  # (the first run on a machine builds the base image and downloads the wheels)
]


def compose_command() -> list[str]:
    """The compose tool that installs here: the v2 plugin when the engine's client has it, else
    Debian's docker-compose (1.29), installed with apt-get when missing."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if not shutil.which("docker-compose"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], env=env,
                          capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], env=env, check=True,
                           capture_output=True)
    return ["docker-compose"]


def clean_env() -> dict[str, str]:
    """The caller's environment without COMPOSE_* (the folder's .env decides, as for an admin)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in ("PWD", "OLDPWD")}


class ComposeStack:
    """A copy of infra/compose/ and the commands of the doc, run in it."""

    def __init__(self, folder: Path, log: Path):
        self.folder, self.log = folder, log
        self.tool = compose_command()

    @property
    def settings(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in (self.folder / ".env").read_text().splitlines()
                    if line and not line.startswith("#"))

    @property
    def project(self) -> str:
        return self.settings["COMPOSE_PROJECT_NAME"]

    def edit(self, **changes: str) -> None:
        """What the admin does with $EDITOR .env."""
        text = (self.folder / ".env").read_text()
        for key, value in changes.items():
            text, found = re.subn(rf"^{key}=.*$", f"{key}={value}", text, flags=re.M)
            assert found == 1, key
        (self.folder / ".env").write_text(text)

    def __call__(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.shell(" ".join([*self.tool, *args]), check=check, timeout=timeout)

    def shell(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run `script` with bash -e in the folder, as the admin would paste it."""
        if self.tool == ["docker", "compose"]:  # the doc's commands, with the v2 plugin where it exists
            script = script.replace("docker-compose ", "docker compose ")
        with self.log.open("a") as log:
            log.write(f"\n$ {script}\n")
            log.flush()
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.folder, env=clean_env(),
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{script!r} failed ({done.returncode}); see {self.log}")
        return done

    def containers(self) -> list[dict]:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"],
                             capture_output=True, text=True, check=True).stdout.split()
        if not ids:
            return []
        return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                         check=True).stdout)

    def container(self, service: str) -> dict:
        return next(c for c in self.containers() if c["Config"]["Labels"]["com.docker.compose.service"] == service
                    and c["Config"]["Labels"].get("com.docker.compose.oneoff") != "True")

    def wait_healthy(self, timeout: float = 300) -> dict[str, str]:
        """Every long-running container healthy and every one-shot exited 0; returns service -> status."""
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = {}
            for c in self.containers():
                service = c["Config"]["Labels"]["com.docker.compose.service"]
                state = c["State"]
                if state["Status"] == "exited":
                    status[service] = f"exited {state['ExitCode']}"
                else:
                    status[service] = state.get("Health", {}).get("Status", state["Status"])
            bad = [s for s, v in status.items() if v.startswith("exited") and v != "exited 0"]
            if bad:
                raise AssertionError(f"{bad} failed: {status}; see {self.log}")
            if status and all(v in ("healthy", "exited 0") for v in status.values()):
                return status
            time.sleep(2)
        raise AssertionError(f"not healthy after {timeout:.0f} s: {status}; see {self.log}")

    def secret(self, name: str) -> str:
        return (self.folder / "secrets" / name).read_text().strip()

    def url(self, port_setting: str) -> str:
        scheme = "https" if port_setting == "SWARMSYNC_API_PUBLISHED_PORT" else "http"  # the API serves HTTPS
        return f"{scheme}://127.0.0.1:{self.settings[port_setting]}"

    @property
    def ca(self) -> Path:
        """The API's CA, as the doc's `trust the API` block writes it into the folder."""
        return self.folder / "ca.pem"


def free_subnet() -> str:
    """A /24 in 172.31.0.0/16 or 172.29.0.0/16 that no network of the engine overlaps (Docker refuses
    overlapping pools; an engine's own default pools are /16s in 172.17-172.31)."""
    taken = [ipaddress.ip_network(config["Subnet"]) for network in docker.from_env().networks.list(greedy=True)
             for config in (network.attrs.get("IPAM") or {}).get("Config") or [] if config.get("Subnet")]
    start = int(uuid.uuid4().hex[:4], 16) % 150
    for second in (31, 29):
        for step in range(150):
            candidate = ipaddress.ip_network(f"172.{second}.{100 + (start + step) % 150}.0/24")
            if not any(candidate.overlaps(net) for net in taken):
                return str(candidate)
    raise AssertionError(f"no free /24 in 172.31/172.29.100-249.0 among the engine's networks: {taken}")


def doc_block(title: str) -> str:
    """The fenced ```sh block of docs/deployment.md whose first line is `# <title>`: the test
    runs what the doc says, word for word."""
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        if block.startswith(f"# {title}"):
            return block
    raise AssertionError(f"no ```sh block starting with '# {title}' in {DOC}")


@pytest.fixture(scope="session")
def images() -> Iterator[dict[str, str]]:
    """The images, built once per session from this checkout (base image and wheels cached on this machine)."""
    tag = f"test-{uuid.uuid4().hex[:8]}"
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "compose-build.log"
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(["bash", str(BUILD)], env={**os.environ, "SWARMSYNC_IMAGE_TAG": tag},
                              stdout=out, stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, f"infra/image/build.sh failed; see {log}"
    print(f"images built in {time.monotonic() - started:.0f} s (log: {log})")
    found = {"tag": tag, "app": f"swarmsync/swarmsync:{tag}", "services": f"swarmsync/services:{tag}"}
    yield found
    subprocess.run(["docker", "rmi", found["app"], found["services"]], capture_output=True)  # our tags only


@pytest.fixture(scope="module")
def stack(images, tmp_path_factory, busybox) -> Iterator[ComposeStack]:
    """infra/compose/ copied into a folder of its own and prepared as the doc says: setup.sh, then the
    admin's edits (a project name, ports and a subnet of its own, so as not to meet another stack)."""
    folder = tmp_path_factory.mktemp("compose") / "compose"
    shutil.copytree(COMPOSE_DIR, folder, ignore=shutil.ignore_patterns(".env", "secrets"))
    ARTIFACTS.mkdir(exist_ok=True)
    stack = ComposeStack(folder, ARTIFACTS / f"compose-{folder.parent.name}.log")
    # (the images' tag given as a build with SWARMSYNC_IMAGE_TAG=... would have it)
    subprocess.run(["bash", "setup.sh"], cwd=folder, check=True, capture_output=True,
                   env={**clean_env(), "SWARMSYNC_IMAGE_TAG": images["tag"]})
    assert stack.settings["SWARMSYNC_IMAGE_TAG"] == images["tag"]
    ports = {name: str(free_port()) for name in
             ("SWARMSYNC_API_PUBLISHED_PORT", "SWARMSYNC_DASHBOARD_PUBLISHED_PORT", "PREFECT_PUBLISHED_PORT")}
    stack.edit(COMPOSE_PROJECT_NAME=f"sstest{uuid.uuid4().hex[:8]}", SWARMSYNC_WORKER_LIMIT="10",
               SWARMSYNC_SUBNET=free_subnet(), **ports,
               SWARMSYNC_PUBLIC_URL=f"https://127.0.0.1:{ports['SWARMSYNC_API_PUBLISHED_PORT']}",
               SWARMSYNC_DASHBOARD_PUBLIC_URL=f"http://127.0.0.1:{ports['SWARMSYNC_DASHBOARD_PUBLISHED_PORT']}",
               SWARMSYNC_PREFECT_UI_URL=f"http://127.0.0.1:{ports['PREFECT_PUBLISHED_PORT']}")
    try:
        yield stack
    finally:
        stack("logs", "--no-color", "--tail", "200", check=False)
        stack.edit(COMPOSE_PROFILES="single,ha")
        stack("down", "-v", "--remove-orphans", "-t", "20", check=False)
        assert not stack.containers()


@pytest.fixture(scope="module")
def state() -> dict:
    """What one step of the module leaves for the next (the steps run in order)."""
    return {}


def admin(stack: ComposeStack) -> Client:
    return Client.login(stack.url("SWARMSYNC_API_PUBLISHED_PORT"), stack.settings["SWARMSYNC_ADMIN_USER"],
                        stack.secret("admin_password"), ca=stack.ca)


def assert_doctor_green(stack: ComposeStack) -> None:
    """`swarmsync doctor` in the API's container (it has no Docker socket: Docker is what the workers
    report), and the same checks through the API, as the dashboard's Overview shows them."""
    stack("run", "--rm", "--no-deps", "api", "cli", "doctor")
    checks = admin(stack).health_checks()
    assert all(c["ok"] for c in checks), checks
    docker = next(c for c in checks if c["part"] == "Docker engine")
    assert Path("/etc/hostname").read_text().strip() in docker["detail"], docker


def test_the_stack_with_its_worker_as_documented(stack, busybox, state) -> None:
    stack("up", "-d")
    status = stack.wait_healthy()
    assert {"postgres", "redis", "prefect", "migrate", "api", "dashboard", "worker"} <= set(status), status

    # the API serves HTTPS with the CA it made in its volume; clients get it as the doc says
    stack.shell(doc_block("trust the API"))
    from swarmsync.tls import fingerprint

    digest = fingerprint(stack.ca.read_bytes())
    assert digest in stack.log.read_text()  # `swarmsync tls show` printed it
    api = stack.url("SWARMSYNC_API_PUBLISHED_PORT")
    served = httpx.get(f"{api}/tls/ca.pem", verify=ssl.create_default_context(cafile=str(stack.ca)), timeout=10)
    assert served.content == stack.ca.read_bytes()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{api}/health", timeout=10)

    # the labels name the version and the commit; no secret is in the image nor in any container's configuration
    image = json.loads(subprocess.run(["docker", "image", "inspect", stack.container("api")["Config"]["Image"]],
                                      capture_output=True, text=True, check=True).stdout)[0]
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] and labels["org.opencontainers.image.revision"] != "unknown"
    assert image["Config"]["User"] == "10001:10001"
    secrets = [stack.secret(name) for name in ("postgres_password", "redis_password", "admin_password")]
    secrets.append(stack.secret("prefect_auth_string").split(":", 1)[1])
    for container in stack.containers():
        configuration = json.dumps(container["Config"]) + json.dumps(container["HostConfig"])
        assert not [s for s in secrets if s in configuration], container["Name"]
    assert not [s for s in secrets if s in json.dumps(image["Config"])]

    # the worker reaches only the API, with a worker token of its own: nothing of the server's in its configuration
    worker = stack.container("worker")
    worker_env = dict(item.split("=", 1) for item in worker["Config"]["Env"])
    assert worker_env["SWARMSYNC_SERVER"] == "https://api:4280"
    assert not {"SWARMSYNC_DATABASE_URL", "SWARMSYNC_API_URL", "SWARMSYNC_PREFECT_AUTH_STRING_FILE",
                "POSTGRES_PASSWORD_FILE", "REDIS_PASSWORD_FILE", "SWARMSYNC_ARCHIVE_BLOCK"} & set(worker_env)
    private = ("/run/secrets", "/var/lib/swarmsync/archive")
    assert not [m for m in worker["Mounts"] if m["Destination"].startswith(private)], worker["Mounts"]
    tokens = {t["name"]: t for t in admin(stack).worker_tokens()}
    assert tokens["local"]["last_seen_at"] and not tokens["local"]["revoked"], tokens

    # the worker is named after the Docker host (stable across re-creations), never its container id
    host = Path("/etc/hostname").read_text().strip()
    assert host in json.dumps(admin(stack).workers()), admin(stack).workers()

    # team mode: Prefect answers only with the auth string (its health probe stays open)
    prefect = stack.url("PREFECT_PUBLISHED_PORT") + "/api"
    assert httpx.get(f"{prefect}/health", timeout=10).status_code == 200
    assert httpx.post(f"{prefect}/flow_runs/filter", json={}, timeout=10).status_code == 401
    assert httpx.get(stack.url("SWARMSYNC_DASHBOARD_PUBLISHED_PORT") + "/_stcore/health", timeout=10).status_code == 200

    admin(stack).add_user("carol", "carol-password-1", role="operator")
    carol = Client.login(api, "carol", "carol-password-1", ca=stack.ca)
    job = carol.submit(busybox, "echo hello from compose; echo oops >&2")
    assert _finished(job) == "COMPLETED"
    text = carol.read_archive_file(job.id, "output.txt").decode()
    assert "hello from compose" in text
    state.update(jobs={job.id: text})

    # the proxies the stack runs are trusted from the first `up`, with no edit: the dashboard (inside the
    # stack) and a TLS proxy on this host reaching the published port pass on each browser's address
    stack("exec", "-T", "dashboard", "python", "-c", "\"from swarmsync.client import Client; "
          "Client.login('https://api:4280', 'carol', 'carol-password-1', forwarded_for='203.0.113.77')\"")
    Client.login(api, "carol", "carol-password-1", forwarded_for="203.0.113.78", ca=stack.ca)
    addresses = {event["address"] for event in admin(stack).audit(limit=50)}
    assert {"203.0.113.77", "203.0.113.78"} <= addresses, addresses

    assert_doctor_green(stack)

    # the documented `down` (COMPOSE_FILE names both files: the worker goes too, the network with it)
    stack("down")
    assert not stack.containers()


def test_ha_with_a_worker_survives_a_replica_process_killed_mid_burst(stack, busybox, state) -> None:
    stack.edit(COMPOSE_PROFILES="ha")
    stack("up", "-d")
    status = stack.wait_healthy()
    assert {"prefect-migrate", "prefect-api-1", "prefect-api-2", "prefect-services", "prefect-lb",
            "worker"} <= set(status), status
    assert "prefect" not in status, status

    api = stack.url("SWARMSYNC_API_PUBLISHED_PORT")
    carol = Client.login(api, "carol", "carol-password-1", ca=stack.ca)
    for job_id, text in state["jobs"].items():
        assert carol.get_job(job_id).row().state_type == "COMPLETED"
        assert carol.read_archive_file(job_id, "output.txt").decode() == text
    token = carol.http.headers["Authorization"].removeprefix("Bearer ")

    # a burst of jobs; the process of one API replica is killed (SIGKILL from the host: a crash, which
    # the restart policy handles, unlike `docker kill`) after the third submission
    replica = stack.container("prefect-api-1")
    count, durations, errors = 10, {}, []

    def one(index: int) -> None:
        started = time.monotonic()
        try:
            job = Client(api, token, ca=stack.ca).submit(busybox, f"echo burst {index}")
            assert _finished(job, timeout=120) == "COMPLETED"
            durations[job.id] = time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"job {index}: {type(exc).__name__}: {exc}")

    threads = []
    for index in range(count):
        threads.append(threading.Thread(target=one, args=(index,)))
        threads[-1].start()
        if index == 2:
            os.kill(replica["State"]["Pid"], signal.SIGKILL)
        time.sleep(0.3)
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    assert len(durations) == count
    median = statistics.median(durations.values())
    print(f"burst of {count} with a replica killed: median {median:.1f} s, max {max(durations.values()):.1f} s")
    assert max(durations.values()) <= median + 10, sorted(durations.values())

    # the replica is back: restarted by its policy, healthy, in HAProxy's rotation again
    stack.wait_healthy(timeout=120)
    assert stack.container("prefect-api-1")["RestartCount"] >= 1
    assert stack.container("prefect-api-1")["State"]["Pid"] != replica["State"]["Pid"]
    state["jobs"].update({job_id: "burst" for job_id in durations})
    assert_doctor_green(stack)


def test_the_backup_snippet_restores_users_jobs_and_archives_into_a_fresh_stack(stack, busybox, state) -> None:
    api = stack.url("SWARMSYNC_API_PUBLISHED_PORT")
    first = next(iter(state["jobs"]))
    expected = Client.login(api, "carol", "carol-password-1", ca=stack.ca).read_archive_file(first, "output.txt")

    stack.shell(doc_block("back up"))
    for name in ("swarmsync.dump", "prefect.dump", "redis.tgz", "archive.tgz", "dashboard.tgz", "tls.tgz",
                 "secrets.tgz"):
        assert (stack.folder / name).stat().st_size > 0, name
    stack("down", "-v")  # everything gone: containers, network, volumes
    assert not stack.containers()

    stack.shell(doc_block("restore"))
    stack.wait_healthy()
    carol = Client.login(api, "carol", "carol-password-1", ca=stack.ca)  # the same CA: restored with its volume
    assert "carol" in {u["username"] for u in admin(stack).users()}
    for job_id in state["jobs"]:
        assert carol.get_job(job_id).row().state_type == "COMPLETED"
    assert carol.read_archive_file(first, "output.txt") == expected
    again = carol.submit(busybox, "echo after the restore")
    assert _finished(again) == "COMPLETED"
    assert "after the restore" in carol.read_archive_file(again.id, "output.txt").decode()


def _finished(job, timeout: float = 180) -> str:
    """The job's final state type, once it has one; its archive written."""
    job.wait(timeout=timeout, poll=0.5)
    row = job.row()
    result = job.result()
    assert result.exit_code == 0, (row.state, result.message)
    return row.state_type
