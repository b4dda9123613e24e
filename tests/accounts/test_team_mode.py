"""Team mode end to end: a second, real stack (`swarmsync up` with
SWARMSYNC_PREFECT_AUTH_STRING) on ports of its own. The Prefect API refuses anyone without
the auth string; users log in to the SwarmSync API and run jobs without ever holding it;
the string never shows up in the stack's logs or in a job's archive. The SwarmSync API serves HTTPS with
the CA `up` made in $SWARMSYNC_HOME/tls: users' machines trust it through SWARMSYNC_CA_FILE or
`swarmsync login --ca/--fingerprint`; a client without it is refused.

The stack is started once for this module (it is the expensive part); every command runs
as a real `swarmsync` process, as a user on another machine would run it."""

from __future__ import annotations

import base64
import secrets
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.accounts.conftest import REDIS_URL
from tests.conftest import clean_env, running_stack

ADMIN_PASSWORD = "team admin password 1"
USER_PASSWORD = "team operator password 2"


@dataclass
class Team:
    home: Path
    server_env: dict[str, str]  # the server host: holds the Prefect auth string
    prefect_url: str
    api_url: str
    auth_string: str

    @property
    def ca(self) -> Path:
        """The CA `swarmsync up` made for the API's certificate."""
        return self.home / "tls" / "ca.pem"

    @property
    def verify(self) -> ssl.SSLContext:
        """httpx's `verify=` for the API: its CA only."""
        return ssl.create_default_context(cafile=str(self.ca))

    def user_env(self, config_dir: Path, ca: bool = True) -> dict[str, str]:
        """A user's machine: the SwarmSync API's URL, its CA (SWARMSYNC_CA_FILE, unless `ca` is False) and nothing
        of Prefect's credentials. Its SWARMSYNC_API_URL points at the real Prefect API, so any direct use would
        get a 401."""
        return {**clean_env(), "SWARMSYNC_CONFIG_DIR": str(config_dir), "SWARMSYNC_URL": self.api_url,
                "SWARMSYNC_HOME": str(config_dir / "home"), "SWARMSYNC_API_URL": self.prefect_url,
                **({"SWARMSYNC_CA_FILE": str(self.ca)} if ca else {})}

    def leaks(self) -> list[str]:
        """Files of the stack (logs, archive, databases on disk) that contain the auth string."""
        needles = [self.auth_string.encode(), base64.b64encode(self.auth_string.encode()),
                   self.auth_string.split(":", 1)[1].encode()]
        found = []
        for path in self.home.rglob("*"):
            if path.is_file() and any(n in path.read_bytes() for n in needles):
                found.append(str(path.relative_to(self.home)))
        return found


def swarmsync_cli(*args: str, env: dict[str, str], stdin: str | None = None,
                  timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swarmsync.cli.main", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def team(tmp_path_factory, busybox, redis_client) -> Iterator[Team]:
    """`swarmsync up` in team mode: Prefect and SwarmSync on fresh PostgreSQL databases,
    sessions in Redis, the first admin from the environment."""
    home = tmp_path_factory.mktemp("team-home")
    auth_string = f"swarmsync-team:{secrets.token_urlsafe(24)}"
    prefix = f"swarmsync-test-team-{uuid.uuid4().hex[:8]}:"
    settings = {
        "SWARMSYNC_REDIS_URL": REDIS_URL,
        "SWARMSYNC_REDIS_PREFIX": prefix,
        "SWARMSYNC_PREFECT_AUTH_STRING": auth_string,
        "SWARMSYNC_ADMIN_USER": "team-admin",
        "SWARMSYNC_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    try:
        with running_stack(home, settings, name="team", configure=False) as env:
            server_env = {**clean_env(), **env}
            yield Team(home, server_env, f"http://127.0.0.1:{env['SWARMSYNC_PORT']}/api",
                       f"https://127.0.0.1:{env['SWARMSYNC_API_PORT']}", auth_string)
    finally:
        keys = list(redis_client.scan_iter(f"{prefix}*"))
        if keys:
            redis_client.delete(*keys)


def test_the_prefect_api_refuses_requests_without_the_auth_string(team):
    assert httpx.get(f"{team.prefect_url}/health", timeout=10).status_code == 200  # probes stay open
    anonymous = httpx.post(f"{team.prefect_url}/flow_runs/filter", json={"limit": 1}, timeout=10)
    assert anonymous.status_code == 401
    wrong = httpx.post(f"{team.prefect_url}/flow_runs/filter", json={"limit": 1}, timeout=10,
                       auth=("swarmsync-team", "not-the-password"))
    assert wrong.status_code == 401
    user, password = team.auth_string.split(":", 1)
    right = httpx.post(f"{team.prefect_url}/flow_runs/filter", json={"limit": 1}, timeout=10,
                       auth=(user, password))
    assert right.status_code == 200, right.text


def test_a_user_runs_a_job_through_the_api_without_the_prefect_credentials(team, busybox, tmp_path):
    admin = team.user_env(tmp_path / "admin")
    login = swarmsync_cli("login", team.api_url, "-u", "team-admin", "--password-stdin",
                          env=admin, stdin=ADMIN_PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    added = swarmsync_cli("user", "add", "alice", "--role", "operator", "--password-stdin",
                          env=admin, stdin=f"{USER_PASSWORD}\n{USER_PASSWORD}\n")
    assert added.returncode == 0, added.stderr

    alice = team.user_env(tmp_path / "alice", ca=False)  # her CA comes with `login --ca`, stored with the login
    assert not any(team.auth_string in value for value in alice.values())
    login = swarmsync_cli("login", team.api_url, "-u", "alice", "--password-stdin", "--ca", str(team.ca),
                          env=alice, stdin=USER_PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    ran = swarmsync_cli("submit", "--wait", "--pull", "never", busybox, "--", "sh", "-c",
                        "echo team-$((6*7)); env", env=alice)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "team-42" in ran.stdout
    job_id = ran.stderr.split()[1]
    status = swarmsync_cli("status", job_id, env=alice)
    assert status.returncode == 0 and "Completed" in status.stdout, status.stdout + status.stderr
    out = tmp_path / "result.txt"
    fetched = swarmsync_cli("result", job_id, "-o", str(out), env=alice)
    assert fetched.returncode == 0, fetched.stderr
    assert out.read_text().startswith("team-42\n")
    assert team.auth_string not in out.read_text()  # the container's environment never gets it
    logs = swarmsync_cli("logs", job_id, env=alice)
    assert logs.returncode == 0 and "team-42" in logs.stdout, logs.stderr

    # schedules and templates too go through the API (they used to go to Prefect directly: 401)
    saved = swarmsync_cli("template", "save", "team-hello", busybox, "--", "echo", "hello", env=alice)
    assert saved.returncode == 0, saved.stderr
    created = swarmsync_cli("schedule", "create", "team-nightly", "--cron", "0 3 1 1 *", "--paused",
                            "--template", "team-hello", env=alice)
    assert created.returncode == 0 and "team-nightly" in created.stdout, created.stdout + created.stderr
    assert "team-nightly" in swarmsync_cli("schedule", "list", env=alice).stdout
    assert swarmsync_cli("schedule", "delete", "team-nightly", env=alice).returncode == 0

    # the same user's doctor asks the API (which holds the Prefect credentials)
    doctor = swarmsync_cli("doctor", env=alice)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "Workers" in doctor.stdout and "ONLINE" not in doctor.stderr

    # talking to Prefect directly without the string fails with a clear message, not a traceback
    direct = {k: v for k, v in alice.items() if k != "SWARMSYNC_URL"}
    (tmp_path / "alice" / "credentials.json").unlink(missing_ok=True)
    refused = swarmsync_cli("jobs", env={**direct, "SWARMSYNC_CONFIG_DIR": str(tmp_path / "nobody")})
    assert refused.returncode != 0
    assert "401" in refused.stderr and "SWARMSYNC_PREFECT_AUTH_STRING" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_doctor_on_the_server_host_checks_the_auth_string(team):
    ok = swarmsync_cli("doctor", env=team.server_env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    without = {k: v for k, v in team.server_env.items() if k != "SWARMSYNC_PREFECT_AUTH_STRING"}
    down = swarmsync_cli("doctor", env=without)
    assert down.returncode == 1
    assert "401" in down.stdout and "SWARMSYNC_PREFECT_AUTH_STRING" in down.stdout
    wrong = swarmsync_cli("doctor", env={**team.server_env, "SWARMSYNC_PREFECT_AUTH_STRING": "swarmsync-team:nope"})
    assert wrong.returncode == 1 and "401" in wrong.stdout


def test_a_remote_worker_needs_only_the_swarmsync_setting(team, busybox, tmp_path):
    """A worker started elsewhere with SWARMSYNC_PREFECT_AUTH_STRING (not Prefect's own
    PREFECT_API_AUTH_STRING, which `swarmsync up` hands to its children) picks up jobs, and
    their log lines reach Prefect (log shipping runs in threads of its own)."""
    created = swarmsync_cli("pool", "create", "team-remote", env=team.server_env)
    assert created.returncode == 0, created.stdout + created.stderr
    worker_log = team.home / "logs" / "remote-worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", "worker", "start",
                                   "--pool", "team-remote", "--limit", "2"],
                                  env=team.server_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        bob = team.user_env(tmp_path / "bob")
        admin_token = _admin_token(team)
        httpx.post(f"{team.api_url}/users", json={"username": "bob", "password": USER_PASSWORD, "role": "operator"},
                   headers={"Authorization": f"Bearer {admin_token}"}, timeout=30,
                   verify=team.verify).raise_for_status()
        assert swarmsync_cli("login", team.api_url, "-u", "bob", "--password-stdin", env=bob,
                             stdin=USER_PASSWORD + "\n").returncode == 0
        ran = swarmsync_cli("submit", "--wait", "--pool", "team-remote", "--pull", "never", busybox, "--",
                            "echo", "from-the-remote-worker", env=bob)
        assert ran.returncode == 0, ran.stdout + ran.stderr + worker_log.read_text()
        assert "from-the-remote-worker" in ran.stdout  # streamed from the run log: the worker shipped it
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    text = worker_log.read_text()
    assert "Error logging to API" not in text and "Unauthorized" not in text, text[-3000:]  # a 401 says so
    assert "event wake-up unavailable" not in text, text[-3000:]


def _admin_token(team: Team) -> str:
    response = httpx.post(f"{team.api_url}/auth/login", json={"username": "team-admin", "password": ADMIN_PASSWORD},
                          timeout=30, verify=team.verify)
    response.raise_for_status()
    return response.json()["token"]


def test_the_api_serves_https_with_the_ca_up_made_and_refuses_clients_without_it(team, tmp_path):
    from swarmsync.client import CertificateRefused, Client
    from swarmsync.tls import cert_names, ensure_ca, fingerprint

    # `up` made the CA once (key 0600) and a server certificate for this host's names, and says so
    assert (team.home / "tls" / "ca-key.pem").stat().st_mode & 0o077 == 0
    server = x509.load_pem_x509_certificate((team.home / "tls" / "server.pem").read_bytes())
    assert {"127.0.0.1", "localhost"} <= cert_names(server)
    digest = fingerprint(team.ca.read_bytes())
    printed = " ".join((team.home / "up.log").read_text().split())
    assert f"SwarmSync API: {team.api_url}" in printed and f"TLS CA: {team.ca} ({digest})" in printed, printed
    shown = swarmsync_cli("tls", "show", env=team.server_env)
    assert shown.returncode == 0 and digest in shown.stdout, shown.stdout + shown.stderr

    # HTTPS verified with that CA; GET /tls/ca.pem (no token) is that very CA
    assert httpx.get(f"{team.api_url}/health", verify=team.verify, timeout=30).status_code == 200
    served = httpx.get(f"{team.api_url}/tls/ca.pem", verify=team.verify, timeout=30)
    assert served.status_code == 200 and served.content == team.ca.read_bytes()
    # refused: the system's trust alone, another CA, plain HTTP
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{team.api_url}/health", timeout=30)
    with pytest.raises(CertificateRefused, match="certificate verify failed.*--ca"):
        Client(team.api_url, ca=ensure_ca(tmp_path / "other-ca")).request("GET", "/health")
    with pytest.raises(httpx.HTTPError):
        httpx.get(team.api_url.replace("https:", "http:") + "/health", timeout=30)
    assert Client(team.api_url, ca=team.ca).request("GET", "/health").json() == {"status": "ok"}

    # the CLI: without the CA one clear line, no traceback; with --fingerprint the CA is fetched, checked, stored
    carol = team.user_env(tmp_path / "carol", ca=False)
    refused = swarmsync_cli("login", team.api_url, "-u", "team-admin", "--password-stdin", env=carol,
                            stdin=ADMIN_PASSWORD + "\n")
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    wrong = swarmsync_cli("login", team.api_url, "-u", "team-admin", "--password-stdin", "--fingerprint",
                          "sha256:" + "ab" * 32, env=carol, stdin=ADMIN_PASSWORD + "\n")
    assert wrong.returncode != 0 and f"its fingerprint is {digest}" in wrong.stderr, wrong.stderr
    login = swarmsync_cli("login", team.api_url, "-u", "team-admin", "--password-stdin", "--fingerprint", digest,
                          env=carol, stdin=ADMIN_PASSWORD + "\n")
    assert login.returncode == 0, login.stderr
    whoami = swarmsync_cli("whoami", env=carol)  # later commands verify with the stored CA
    assert whoami.returncode == 0 and "team-admin" in whoami.stdout, whoami.stdout + whoami.stderr


def test_a_worker_host_verifies_core_by_the_fingerprint_worker_token_create_prints(team, tmp_path):
    from swarmsync.tls import fingerprint

    digest = fingerprint(team.ca.read_bytes())
    created = swarmsync_cli("worker", "token", "create", "tls-host", "--server", team.api_url, env=team.server_env)
    assert created.returncode == 0, created.stdout + created.stderr
    command = created.stdout.strip().splitlines()[-1]
    assert command.startswith(f"swarmsync worker start --server {team.api_url} --token ssw_"), command
    assert command.endswith(f"--ca-fingerprint {digest}"), command
    token = command.split("--token ")[1].split()[0]
    host = {**clean_env(), "HOME": str(tmp_path), "SWARMSYNC_HOME": str(tmp_path / "swarmsync"),
            "PREFECT_HOME": str(tmp_path / "prefect")}  # nothing of the server's: no CA, no auth string

    wrong = swarmsync_cli("worker", "start", "--server", team.api_url, "--token", token, "--ca-fingerprint",
                          "sha256:" + "0" * 64, env=host, timeout=60)
    assert wrong.returncode != 0 and f"its fingerprint is {digest}" in wrong.stdout + wrong.stderr
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", *command.split()[1:]], env=host,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while b"started!" not in log.read_bytes() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert worker.poll() is None and b"started!" in log.read_bytes(), log.read_text()[-3000:]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert (tmp_path / "swarmsync" / "tls" / "core-ca.pem").read_bytes() == team.ca.read_bytes()


def test_the_auth_string_never_appears_in_logs_or_archives(team):
    """Last in the module: after the jobs above ran and were archived."""
    archive = team.home / "archive"
    assert archive.exists() and any(archive.rglob("manifest.json"))
    worker_log = (team.home / "logs" / "worker.log").read_text()
    assert "Finished in state Completed" in worker_log
    assert "event wake-up unavailable" not in worker_log  # its event subscription authenticates too
    assert team.leaks() == []
