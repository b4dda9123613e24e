"""swarmsync/tls.py: the CA made once, the server certificate's names and renewal, fingerprints as openssl
prints them, and fetch_ca against a real HTTPS server (the standard library's, in a thread)."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from swarmsync.settings import SwarmSyncSettings
from swarmsync.tls import (
    CA_KEY,
    SERVER_CERT,
    TLSError,
    cert_names,
    client_context,
    ensure_ca,
    ensure_server_cert,
    fetch_ca,
    fingerprint,
    normalize_fingerprint,
    save_ca,
    server_names,
)
from tests.conftest import free_port

NAMES = ["core.example.org", "localhost", "127.0.0.1", "::1"]


@pytest.fixture(autouse=True)
def _no_ca_from_the_environment(monkeypatch) -> None:
    """These tests choose the CA themselves; one named by the running shell (or an earlier test) is not theirs."""
    monkeypatch.delenv("SWARMSYNC_CA_FILE", raising=False)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_ca_is_made_once_with_a_private_key_and_reused(tmp_path) -> None:
    ca = ensure_ca(tmp_path / "tls")
    assert ca == tmp_path / "tls" / "ca.pem"
    key = tmp_path / "tls" / CA_KEY
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    cert = load(ca)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=3649) < lifetime < dt.timedelta(days=3652)
    before = (ca.read_bytes(), key.read_bytes())
    assert ensure_ca(tmp_path / "tls") == ca
    assert (ca.read_bytes(), key.read_bytes()) == before  # reused, not made again


def test_a_ca_without_its_key_is_refused_not_replaced(tmp_path) -> None:
    ca = ensure_ca(tmp_path)
    (tmp_path / CA_KEY).unlink()
    with pytest.raises(TLSError, match="not a readable CA pair"):
        ensure_ca(tmp_path)
    assert ca.exists()


def test_the_server_certificate_names_every_name_and_chains_to_the_ca(tmp_path) -> None:
    cert_path, key_path = ensure_server_cert(tmp_path, [*NAMES, "0.0.0.0", "LOCALHOST", "[::1]"])
    cert = load(cert_path)
    assert cert_names(cert) == {"core.example.org", "localhost", "127.0.0.1", "::1"}
    cert.verify_directly_issued_by(load(tmp_path / "ca.pem"))
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=365) < lifetime < dt.timedelta(days=731)
    # openssl agrees: the chain verifies for a server (purpose sslserver) and for the name
    done = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "sslserver",
                           "-verify_hostname", "core.example.org", str(cert_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_server_certificate_is_reused_and_issued_again_on_a_name_change_or_near_expiry(tmp_path) -> None:
    cert_path, _ = ensure_server_cert(tmp_path, NAMES)
    first = cert_path.read_bytes()
    ensure_server_cert(tmp_path, list(reversed(NAMES)))  # the same names in another order
    assert cert_path.read_bytes() == first
    ca = (tmp_path / "ca.pem").read_bytes()

    ensure_server_cert(tmp_path, [*NAMES, "core2.example.org"])
    second = cert_path.read_bytes()
    assert second != first and "core2.example.org" in cert_names(load(cert_path))
    assert (tmp_path / "ca.pem").read_bytes() == ca  # the CA stays: clients keep trusting it

    # a certificate 20 days from its end (one made by another CA here, then) is replaced
    other = tmp_path / "other"
    short, short_key = ensure_server_cert(other, NAMES)
    (tmp_path / SERVER_CERT).write_bytes(short.read_bytes())
    (tmp_path / "server-key.pem").write_bytes(short_key.read_bytes())
    ensure_server_cert(tmp_path, NAMES)
    load(cert_path).verify_directly_issued_by(load(tmp_path / "ca.pem"))


def test_renewal_30_days_before_expiry(tmp_path, monkeypatch) -> None:
    cert_path, _ = ensure_server_cert(tmp_path, NAMES)
    first = cert_path.read_bytes()
    ends = load(cert_path).not_valid_after_utc
    import swarmsync.tls as tls

    monkeypatch.setattr(tls, "_now", lambda: ends - dt.timedelta(days=31))
    ensure_server_cert(tmp_path, NAMES)
    assert cert_path.read_bytes() == first
    monkeypatch.setattr(tls, "_now", lambda: ends - dt.timedelta(days=29))
    ensure_server_cert(tmp_path, NAMES)
    assert cert_path.read_bytes() != first


def test_the_fingerprint_is_openssls_sha256_in_lowercase_without_colons(tmp_path) -> None:
    ca = ensure_ca(tmp_path)
    printed = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(ca)],
                             capture_output=True, text=True, check=True).stdout.strip()
    # e.g. "sha256 Fingerprint=AB:CD:..." (the label's case differs between openssl versions)
    hexdigits = printed.split("=", 1)[1].replace(":", "").lower()
    assert fingerprint(ca.read_bytes()) == f"sha256:{hexdigits}"
    der = subprocess.run(["openssl", "x509", "-outform", "DER", "-in", str(ca)], capture_output=True,
                         check=True).stdout
    assert fingerprint(der) == fingerprint(ca.read_text())
    assert normalize_fingerprint(printed) == fingerprint(der)
    assert normalize_fingerprint(hexdigits.upper()) == fingerprint(der)
    with pytest.raises(TLSError, match="not a SHA-256 fingerprint"):
        normalize_fingerprint("sha256:1234")
    with pytest.raises(TLSError):
        fingerprint(b"not a certificate")


def test_server_names_cover_the_settings_and_the_machine(tmp_path) -> None:
    import socket

    settings = SwarmSyncSettings(home=tmp_path, host="0.0.0.0", api_host="10.1.2.3",
                                 public_url="https://core.example.org:4280", tls_names="api, core-alias")
    names = server_names(settings)
    assert names[:2] == ["api", "core-alias"]
    for name in ("10.1.2.3", "core.example.org", socket.gethostname().lower(), "localhost", "127.0.0.1"):
        assert name in names
    assert "0.0.0.0" not in names


@pytest.fixture
def https_server(tmp_path) -> Iterator[tuple[str, Path]]:
    """A real HTTPS server on 127.0.0.1 with a certificate of a CA made here, serving that CA at /tls/ca.pem."""
    folder = tmp_path / "server-tls"
    cert, key = ensure_server_cert(folder, ["localhost", "127.0.0.1"])
    ca = folder / "ca.pem"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body = ca.read_bytes() if self.path == "/tls/ca.pem" else b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_ca_accepts_the_right_fingerprint_and_refuses_any_other(https_server, tmp_path) -> None:
    url, ca = https_server
    right = fingerprint(ca.read_bytes())
    assert fetch_ca(url, right) == ca.read_bytes()
    assert fetch_ca(url, right.removeprefix("sha256:").upper()) == ca.read_bytes()  # as pasted from openssl

    wrong = fingerprint(ensure_ca(tmp_path / "another").read_bytes())
    with pytest.raises(TLSError, match=f"refused the CA of {url}: its fingerprint is {right}, expected {wrong}"):
        fetch_ca(url, wrong)

    saved = save_ca(fetch_ca(url, right), tmp_path / "client" / "ca.pem")
    settings = SwarmSyncSettings(home=tmp_path / "client-home")
    # the saved CA verifies the server; the system's trust alone refuses it
    assert httpx.get(f"{url}/x", verify=client_context(settings, saved)).text == "ok"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/x", verify=client_context(settings))
    assert httpx.get(f"{url}/x", verify=client_context(settings, saved.read_bytes())).text == "ok"


def test_fetch_ca_of_a_server_without_one_says_so(tmp_path) -> None:
    with pytest.raises(TLSError, match="cannot fetch the CA"):
        fetch_ca(f"https://127.0.0.1:{free_port()}", "sha256:" + "0" * 64, timeout=2)


def test_team_mode_serves_https_and_local_urls_say_so(tmp_path, monkeypatch) -> None:
    for name in ("SWARMSYNC_API_PORT", "SWARMSYNC_API_HOST", "SWARMSYNC_HOST", "SWARMSYNC_TLS",
                 "SWARMSYNC_PREFECT_AUTH_STRING"):  # a test session's stack sets some of them
        monkeypatch.delenv(name, raising=False)
    embedded = SwarmSyncSettings(home=tmp_path)
    assert not embedded.serves_tls and embedded.local_api_url == "http://127.0.0.1:4280"
    team = SwarmSyncSettings(home=tmp_path, prefect_auth_string="a:b", api_host="0.0.0.0", api_port=4999)
    assert team.serves_tls and team.local_api_url == "https://127.0.0.1:4999"
    assert not SwarmSyncSettings(prefect_auth_string="a:b", tls="off").serves_tls
    assert SwarmSyncSettings(tls="on", api_host="::1").local_api_url == "https://[::1]:4280"


def test_the_dashboard_talks_https_to_a_team_mode_api_on_its_host(tmp_path, monkeypatch) -> None:
    from swarmsync.client import dashboard_settings
    from swarmsync.settings import get_settings

    for key in ("SWARMSYNC_URL", "SWARMSYNC_DASHBOARD_API_URL", "SWARMSYNC_API_HOST", "SWARMSYNC_HOST"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SWARMSYNC_PREFECT_AUTH_STRING", "a:b")
    monkeypatch.setenv("SWARMSYNC_API_PORT", "4281")
    get_settings.cache_clear()
    try:
        assert dashboard_settings().api_url == "https://127.0.0.1:4281"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_clients_trust_the_system_plus_this_hosts_ca_unless_told_one_ca(tmp_path) -> None:
    settings = SwarmSyncSettings(home=tmp_path / "home")
    system = len(client_context(settings).get_ca_certs())
    ensure_ca(tmp_path / "home" / "tls")
    assert len(client_context(settings).get_ca_certs()) == system + 1  # the system's trust and the home CA
    other = ensure_ca(tmp_path / "other")
    only = SwarmSyncSettings(home=tmp_path / "home", ca_file=other)
    assert [c["subject"] for c in client_context(only).get_ca_certs()] == \
        [c["subject"] for c in client_context(settings, other).get_ca_certs()]
    assert len(client_context(only).get_ca_certs()) == 1
    with pytest.raises(TLSError, match="CA file"):
        client_context(SwarmSyncSettings(ca_file=tmp_path / "missing.pem"))


def test_fetch_and_save_and_cores_own_fingerprint(https_server, tmp_path) -> None:
    from swarmsync.tls import core_ca_fingerprint, fetch_and_save_ca

    url, ca = https_server
    saved = fetch_and_save_ca(url, fingerprint(ca.read_bytes()), tmp_path / "host" / "core-ca.pem")
    assert saved.read_bytes() == ca.read_bytes()
    home = tmp_path / "core-home"
    assert core_ca_fingerprint(SwarmSyncSettings(home=home)) is None  # no CA yet
    made = ensure_ca(home / "tls")
    assert core_ca_fingerprint(SwarmSyncSettings(home=home)) == fingerprint(made.read_bytes())
    assert core_ca_fingerprint(SwarmSyncSettings(home=home, tls_cert=made, tls_key=made)) is None
    assert issubclass(TLSError, ValueError)  # worker start catches ValueError around fetch_and_save_ca


def test_processes_starting_together_make_one_ca_and_a_matching_pair(tmp_path) -> None:
    """API processes started at once (Prefect's HA shape, compose replicas) race for the files: the lock
    leaves one CA whose key signed the one server certificate."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: ensure_server_cert(tmp_path, NAMES), range(8)))
    assert len({cert.read_bytes() for cert, _ in results}) == 1
    load(tmp_path / SERVER_CERT).verify_directly_issued_by(load(tmp_path / "ca.pem"))
    done = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / SERVER_CERT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
