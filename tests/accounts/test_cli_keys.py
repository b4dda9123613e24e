"""`swarmsync login --key` and `swarmsync key add|list|remove` against the stack's own API process
(which has no Redis: its nonces live in SQL, on PostgreSQL), with real `ssh-keygen` keys, a key
file and a real ssh-agent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid

import pytest

from swarmsync.auth import audit, tokens, users
from swarmsync.auth.roles import Principal
from tests.accounts.conftest import PASSWORD
from tests.accounts.sshkeys import fingerprint_of, keygen
from tests.accounts.test_cli_accounts import cli


@pytest.fixture
def remote(stack, tmp_path) -> dict[str, str]:
    return {"SWARMSYNC_URL": f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}",
            "SWARMSYNC_CONFIG_DIR": str(tmp_path / "config")}


@pytest.fixture
def agent(tmp_path):
    """A real ssh-agent of this test (ended by its pid)."""
    out = subprocess.run(["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")], capture_output=True, text=True,
                         check=True).stdout
    pid = int(re.search(r"SSH_AGENT_PID=(\d+)", out).group(1))
    try:
        yield str(tmp_path / "agent.sock")
    finally:
        os.kill(pid, signal.SIGTERM)


def flat(text: str) -> str:
    """Rich wraps long lines: compare words."""
    return " ".join(text.split())


def _user(role: str) -> str:
    name = f"key-{role}-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, PASSWORD, role)
    return name


def test_add_a_key_then_log_in_with_the_key_file_and_through_the_agent(stack, remote, tmp_path, agent):
    name = _user("operator")
    key = keygen(tmp_path, "laptop")
    config = {"SWARMSYNC_CONFIG_DIR": remote["SWARMSYNC_CONFIG_DIR"]}
    login = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--password-stdin", stdin=PASSWORD + "\n", env=config)
    assert login.returncode == 0, login.stderr
    added = cli("key", "add", str(key.with_name("laptop.pub")), env=config)  # through the stored login
    assert added.returncode == 0, added.stderr
    assert f"added ssh-ed25519 key {fingerprint_of(key)} (laptop@test) for {name}" in flat(added.stderr)
    listed = cli("key", "list", env={**config, "COLUMNS": "300"})
    assert fingerprint_of(key) in listed.stdout and "laptop@test" in listed.stdout
    assert cli("logout", env=config).returncode == 0

    with_file = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--key", str(key), env=config)
    assert with_file.returncode == 0, with_file.stderr
    assert f"logged in to {remote['SWARMSYNC_URL']} as {name} (operator)" in flat(with_file.stderr)
    assert f"{name} (operator, via session)" in cli("whoami", env=config).stdout
    assert audit.events(actor=name, action="login")[0].detail["method"] == "ssh-key"

    subprocess.run(["ssh-add", "-q", str(key)], env={**os.environ, "SSH_AUTH_SOCK": agent}, check=True,
                   capture_output=True)
    key.unlink()  # only the agent holds the private key now
    no_agent = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--key", str(key.with_name("laptop.pub")),
                   env={**config, "SSH_AUTH_SOCK": None})
    assert no_agent.returncode == 1 and "is SSH_AUTH_SOCK set" in flat(no_agent.stderr)
    with_agent = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--key", str(key.with_name("laptop.pub")),
                     env={**config, "SSH_AUTH_SOCK": agent})
    assert with_agent.returncode == 0, with_agent.stderr


def test_admins_list_and_revoke_anyones_keys_from_the_cli(stack, remote, tmp_path):
    owner, admin = _user("viewer"), _user("admin")
    key = keygen(tmp_path, "desk")
    on_host = cli("key", "add", str(key.with_name("desk.pub")), "--user", owner,  # the server host: the database
                  env={"SWARMSYNC_CONFIG_DIR": str(tmp_path / "host")})
    assert on_host.returncode == 0, on_host.stderr
    as_admin = {**remote, "SWARMSYNC_TOKEN": tokens.create_token(Principal.local(), "cli", admin).token,
                "COLUMNS": "300"}
    assert fingerprint_of(key) in cli("key", "list", "--user", owner, env=as_admin).stdout
    as_owner = {**remote, "SWARMSYNC_TOKEN": tokens.create_token(Principal.local(), "cli", owner).token}
    other = cli("key", "list", "--user", admin, env=as_owner)
    assert other.returncode == 4 and "may not users:manage" in flat(other.stderr)

    revoked = cli("key", "remove", fingerprint_of(key), "--user", owner, env=as_admin)
    assert revoked.returncode == 0 and f"removed key {fingerprint_of(key)} of {owner}" in flat(revoked.stderr)
    refused = cli("login", remote["SWARMSYNC_URL"], "-u", owner, "--key", str(key),
                  env={"SWARMSYNC_CONFIG_DIR": remote["SWARMSYNC_CONFIG_DIR"]})
    assert refused.returncode == 1 and "401: key login refused" in flat(refused.stderr)
    assert audit.events(actor=owner, action="login.key")[0].detail["why"] == "the key was removed"

    garbage = tmp_path / "garbage.pub"
    garbage.write_text("ssh-dss AAAAB3NzaC1kc3MAAACBAP hello\n")
    bad = cli("key", "add", str(garbage), env=as_owner)
    assert bad.returncode == 4 and "400: unsupported key type 'ssh-dss'" in flat(bad.stderr)
    private = cli("key", "add", str(tmp_path / "desk"), env=as_owner)  # takes desk.pub beside it
    assert private.returncode == 0, private.stderr
