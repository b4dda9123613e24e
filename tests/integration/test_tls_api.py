"""`swarmsync api` alone in team mode (a real process; SQLite under a home of its own, no Prefect needed to
serve): HTTPS with the CA it makes once, reused across restarts; the server certificate re-issued for new
names; the admin's own certificate instead (no CA, GET /tls/ca.pem 404); SWARMSYNC_TLS=off; a half-given
admin certificate refused with one clear line."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from swarmsync.client import CertificateRefused, Client
from swarmsync.tls import cert_names, ensure_ca, ensure_server_cert, fingerprint
from tests.conftest import free_port


def team_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}
    return {**env, "SWARMSYNC_HOME": str(home), "SWARMSYNC_PREFECT_AUTH_STRING": "team:not-used-here",
            "SWARMSYNC_API_PORT": str(free_port()), "SWARMSYNC_CONFIG_DIR": str(home / "config"), **extra}


@contextmanager
def api(env: dict[str, str], scheme: str = "https") -> Iterator[tuple[str, Path]]:
    """`swarmsync api` until its port answers (any TLS outcome counts as answering); yields its URL and log."""
    log = Path(env["SWARMSYNC_HOME"]) / f"api-{env['SWARMSYNC_API_PORT']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", "api"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"{scheme}://127.0.0.1:{env['SWARMSYNC_API_PORT']}"
    try:
        deadline = time.monotonic() + 90
        while b"Uvicorn running" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"swarmsync api did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def verified(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def test_api_makes_its_ca_once_serves_https_and_reissues_for_new_names(tmp_path) -> None:
    home = tmp_path / "home"
    env = team_env(home)
    with api(env) as (url, log):
        ca = home / "tls" / "ca.pem"
        digest = fingerprint(ca.read_bytes())
        assert f"serving HTTPS; CA {ca} (fingerprint {digest})" in log.read_text()
        assert httpx.get(f"{url}/health", verify=verified(ca), timeout=10).json() == {"status": "ok"}
        assert httpx.get(f"{url}/tls/ca.pem", verify=verified(ca), timeout=10).content == ca.read_bytes()
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{url}/health", timeout=10)  # the system's trust alone
        # a client on this host (same SWARMSYNC_HOME) trusts the CA by default; elsewhere it is refused
        done = subprocess.run([sys.executable, "-c", f"from swarmsync.client import Client; "
                               f"print(Client({url!r}).request('GET', '/health').text)"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and '"ok"' in done.stdout, done.stderr
        with pytest.raises(CertificateRefused, match="certificate verify failed"):
            Client(url, ca=ensure_ca(tmp_path / "another-ca")).request("GET", "/health")
    first_server = (home / "tls" / "server.pem").read_bytes()

    # a restart reuses the CA and the certificate; a new name re-issues the certificate only
    with api({**env, "SWARMSYNC_TLS_NAMES": "core.example.org"}) as (url, _log):
        assert fingerprint(ca.read_bytes()) == digest
        server = x509.load_pem_x509_certificate((home / "tls" / "server.pem").read_bytes())
        assert "core.example.org" in cert_names(server)
        assert (home / "tls" / "server.pem").read_bytes() != first_server
        assert httpx.get(f"{url}/health", verify=verified(ca), timeout=10).status_code == 200


def test_an_admins_certificate_replaces_the_ca(tmp_path) -> None:
    admin_tls = tmp_path / "admins-pki"  # the admin's own CA and certificate (made here with the same code)
    cert, key = ensure_server_cert(admin_tls, ["localhost", "127.0.0.1"])
    home = tmp_path / "home"
    with api(team_env(home, SWARMSYNC_TLS_CERT=str(cert), SWARMSYNC_TLS_KEY=str(key))) as (url, log):
        assert f"serving HTTPS with {cert}" in log.read_text()
        assert httpx.get(f"{url}/health", verify=verified(admin_tls / "ca.pem"), timeout=10).status_code == 200
        missing = httpx.get(f"{url}/tls/ca.pem", verify=verified(admin_tls / "ca.pem"), timeout=10)
        assert missing.status_code == 404 and "no CA of its own" in missing.json()["detail"]
    assert not (home / "tls").exists()  # no CA made


def test_tls_off_serves_plain_http_and_says_so(tmp_path) -> None:
    with api(team_env(tmp_path / "home", SWARMSYNC_TLS="off"), scheme="http") as (url, log):
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert "TLS is off" in log.read_text()


def test_a_certificate_without_its_key_is_one_clear_error(tmp_path) -> None:
    cert, _key = ensure_server_cert(tmp_path / "pki", ["localhost"])
    done = subprocess.run([sys.executable, "-m", "swarmsync.cli.main", "api"],
                          env=team_env(tmp_path / "home", SWARMSYNC_TLS_CERT=str(cert)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "set both SWARMSYNC_TLS_CERT and SWARMSYNC_TLS_KEY" in done.stderr and "Traceback" not in done.stderr
