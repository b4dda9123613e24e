"""TLS of the SwarmSync API in team mode: its own CA, the server certificate, and clients' trust.

    ensure_ca(dir)                 -> dir/ca.pem (made once: EC P-256, 10 years; the key dir/ca-key.pem, 0600)
    ensure_server_cert(dir, names) -> (dir/server.pem, dir/server-key.pem), signed by that CA, one SAN per
                                      name; issued again when the names change or 30 days before it expires
    fingerprint(pem_or_der)        -> "sha256:<64 lowercase hex digits>" of the certificate's DER
                                      (`openssl x509 -noout -fingerprint -sha256`, lowercased, without colons)
    fetch_ca(url, fingerprint)     -> the CA from the server's public GET /tls/ca.pem, refused unless it has
                                      that fingerprint (the only request SwarmSync makes without verification)
    client_context(settings, ca)   -> the ssl.SSLContext every SwarmSync client of the API verifies with

An admin's own certificate (SWARMSYNC_TLS_CERT + SWARMSYNC_TLS_KEY) replaces all of the above: no CA is
made and clients trust the admin's chain (system trust, or SWARMSYNC_CA_FILE). See docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import hmac
import ipaddress
import os
import re
import socket
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmsync.settings import SwarmSyncSettings
from swarmsync.tls_errors import TLSError

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397  # a little over a year
RENEW_BEFORE = dt.timedelta(days=30)
ANY_ADDRESS = {"0.0.0.0", "::", ""}  # bind addresses, never a name a client connects to


# --- the server side: CA and server certificate -----------------------------------------------------
def tls_dir(settings: SwarmSyncSettings) -> Path:
    """Where `up` / `api` keep the CA and the server certificate: $SWARMSYNC_HOME/tls."""
    return settings.home_dir / "tls"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (a temporary file in the same folder, renamed) with `mode` from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One process at a time makes or renews the files of `directory` (API processes started together)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return cert, key


def ensure_ca(directory: Path) -> Path:
    """The CA certificate `directory/ca.pem`, made once (EC P-256, 10 years) with its key `ca-key.pem` (0600);
    an existing pair is reused as it is."""
    directory = Path(directory)
    with _locked(directory):
        return _ensure_ca(directory)


def _ensure_ca(directory: Path) -> Path:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if _load_pair(cert_path, key_path) is not None:
        return cert_path
    if cert_path.exists() or key_path.exists():
        raise TLSError(f"{directory}: {CA_CERT} and {CA_KEY} are not a readable CA pair; move both away to make a "
                       "new CA (every client and worker must then trust the new ca.pem)")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SwarmSync"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"SwarmSync CA ({socket.gethostname()})"[:64])])
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)  # the key first: a ca.pem never exists without its key
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path


def normalize_names(names: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """Names for the SANs: stripped, lowercased, brackets off IPv6, bind-everything addresses dropped, each once."""
    out: list[str] = []
    for raw in names:
        name = (raw or "").strip().strip("[]").lower()
        if name in ANY_ADDRESS or name in out:
            continue
        out.append(name)
    return out


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def cert_names(cert: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses of a certificate's SANs, as strings."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in sans.get_values_for_type(x509.DNSName)} | \
        {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def _current(cert_path: Path, key_path: Path, ca: x509.Certificate, names: list[str]) -> bool:
    """The server certificate there is the one wanted: signed by this CA, these names, not close to expiry."""
    pair = _load_pair(cert_path, key_path)
    if pair is None:
        return False
    cert, key = pair
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - another CA, a bad signature: issue a new one
        return False
    wanted = {_canonical(n) for n in names}
    return (cert_names(cert) == wanted and cert.not_valid_after_utc - _now() > RENEW_BEFORE
            and cert.public_key().public_numbers() == key.public_key().public_numbers())


def ensure_server_cert(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """`directory/server.pem` and `server-key.pem` (0600), signed by `ensure_ca(directory)`, with a SAN for
    each of `names` (DNS names and IP addresses); reused while they match, else issued again (397 days)."""
    directory = Path(directory)
    names = normalize_names(names)
    if not names:
        raise TLSError("a server certificate needs at least one name (SWARMSYNC_TLS_NAMES)")
    with _locked(directory):
        return _ensure_server_cert(directory, names)


def _ensure_server_cert(directory: Path, names: list[str]) -> tuple[Path, Path]:
    ca_path = _ensure_ca(directory)
    ca_pair = _load_pair(ca_path, directory / CA_KEY)
    if ca_pair is None:
        raise TLSError(f"{directory}: the CA could not be read back")
    ca, ca_key = ca_pair
    cert_path, key_path = directory / SERVER_CERT, directory / SERVER_KEY
    if _current(cert_path, key_path, ca, names):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + dt.timedelta(days=SERVER_DAYS), ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SwarmSync"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def server_names(settings: SwarmSyncSettings) -> list[str]:
    """The names the server certificate carries: SWARMSYNC_TLS_NAMES, the API's and Prefect's bind
    addresses (not 0.0.0.0), the public URL's host, this machine's host names, localhost, 127.0.0.1, ::1."""
    extra = [n for n in re.split(r"[,\s]+", settings.tls_names) if n]
    public = urlsplit(settings.public_url).hostname if settings.public_url else None
    fqdn = socket.getfqdn()
    return normalize_names([*extra, settings.api_bind_host, settings.host, public or "", socket.gethostname(),
                            fqdn, "localhost", "127.0.0.1", "::1"])


def server_files(settings: SwarmSyncSettings) -> tuple[Path, Path]:
    """The certificate chain and key the API serves: the admin's (SWARMSYNC_TLS_CERT/KEY), else SwarmSync's own
    under $SWARMSYNC_HOME/tls (made or renewed now)."""
    if settings.tls_cert or settings.tls_key:
        if not (settings.tls_cert and settings.tls_key):
            raise TLSError("set both SWARMSYNC_TLS_CERT and SWARMSYNC_TLS_KEY (an admin's certificate), or neither")
        cert, key = settings.tls_cert.expanduser(), settings.tls_key.expanduser()
        for name, path in (("SWARMSYNC_TLS_CERT", cert), ("SWARMSYNC_TLS_KEY", key)):
            if not os.access(path, os.R_OK):
                raise TLSError(f"{name}={path}: not a readable file")
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise TLSError(f"SWARMSYNC_TLS_CERT={cert} / SWARMSYNC_TLS_KEY={key}: not a certificate chain "
                           f"and its key: {exc}") from None
        return cert, key
    return ensure_server_cert(tls_dir(settings), server_names(settings))


def own_ca(settings: SwarmSyncSettings) -> Path | None:
    """The CA certificate GET /tls/ca.pem serves: SwarmSync's own, when it exists (never the admin's)."""
    path = tls_dir(settings) / CA_CERT
    return path if path.is_file() else None


# --- fingerprints --------------------------------------------------------------------------------------
def _der(pem_or_der: bytes | str) -> bytes:
    data = pem_or_der.encode() if isinstance(pem_or_der, str) else bytes(pem_or_der)
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        except ValueError as exc:
            raise TLSError(f"not a PEM certificate: {exc}") from None
    try:
        return x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    except ValueError as exc:
        raise TLSError(f"neither a PEM nor a DER certificate: {exc}") from None


def fingerprint(pem_or_der: bytes | str) -> str:
    """`sha256:<hex>` of the (first) certificate's DER: 64 lowercase hex digits, no colons; the same digits as
    `openssl x509 -noout -fingerprint -sha256 -in ca.pem` prints (there uppercase with colons)."""
    return "sha256:" + hashlib.sha256(_der(pem_or_der)).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as people paste it (`sha256:ab..`, `SHA256 Fingerprint=AB:CD:..`, bare hex with or
    without colons) in the form `fingerprint()` gives; TLSError when it is not 64 hex digits."""
    value = text.strip()
    value = re.sub(r"^(sha256\s*fingerprint\s*=|sha256:)", "", value, flags=re.I).replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise TLSError(f"{text!r} is not a SHA-256 fingerprint (sha256: and 64 hex digits)")
    return "sha256:" + value


# --- the client side ---------------------------------------------------------------------------------
def default_ca_file(settings: SwarmSyncSettings) -> Path | None:
    """SWARMSYNC_CA_FILE, else $SWARMSYNC_HOME/tls/ca.pem when it exists (this host runs `up`), else None."""
    if settings.ca_file:
        return settings.ca_file.expanduser()
    return own_ca(settings)


def client_context(settings: SwarmSyncSettings, ca: Path | str | bytes | None = None) -> ssl.SSLContext:
    """How a SwarmSync client verifies the API: `ca` (a file, or PEM bytes: only that CA), else
    SWARMSYNC_CA_FILE (only that CA), else the system's trust plus $SWARMSYNC_HOME/tls/ca.pem when it exists.
    Hostnames are always checked."""
    if isinstance(ca, bytes):
        try:
            return ssl.create_default_context(cadata=ca.decode())
        except (ssl.SSLError, ValueError) as exc:
            raise TLSError(f"the stored CA certificate is not usable: {exc}") from None
    explicit = Path(ca).expanduser() if ca else (settings.ca_file.expanduser() if settings.ca_file else None)
    if explicit is not None:
        try:
            return ssl.create_default_context(cafile=str(explicit))
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"CA file {explicit}: {getattr(exc, 'strerror', None) or exc}") from None
    context = ssl.create_default_context()
    if (home_ca := own_ca(settings)) is not None:
        try:
            context.load_verify_locations(cafile=str(home_ca))
        except (OSError, ssl.SSLError):
            pass  # unreadable (another user's home): the system's trust alone
    return context


def fetch_ca(server_url: str, expected: str, timeout: float = 10) -> bytes:
    """The CA certificate (PEM) the server at `server_url` serves at GET /tls/ca.pem, downloaded without
    verifying the server (there is nothing to verify with yet) and accepted only when its fingerprint is
    `expected`; the server is then asked again, verified with that CA. TLSError otherwise."""
    import httpx

    want = normalize_fingerprint(expected)
    url = server_url.rstrip("/") + "/tls/ca.pem"
    try:
        # the one unverified request: what it returns is trusted only after the fingerprint check below
        response = httpx.get(url, verify=False, timeout=timeout)  # noqa: S501
    except httpx.HTTPError as exc:
        raise TLSError(f"cannot fetch the CA from {url}: {exc}") from None
    if response.status_code != 200:
        raise TLSError(f"{url} answered {response.status_code}: the server has no CA of its own (an admin's "
                       "certificate?); get its CA file from the admin and use --ca FILE")
    pem = response.content
    got = fingerprint(pem)
    if not hmac.compare_digest(got, want):
        raise TLSError(f"refused the CA of {server_url}: its fingerprint is {got}, expected {want}. Someone may be "
                       "in between (or the server made a new CA): ask the admin for the current fingerprint")
    try:
        httpx.get(url, verify=ssl.create_default_context(cadata=pem.decode()), timeout=timeout)
    except httpx.HTTPError as exc:
        raise TLSError(f"{server_url} serves a CA with the expected fingerprint, but its own certificate does not "
                       f"verify with it: {exc}") from None
    return pem


def fetch_and_save_ca(server_url: str, expected: str, path: Path) -> Path:
    """`fetch_ca` then `save_ca`: the checked CA of `server_url` written to `path` (a worker host's core-ca.pem)."""
    return save_ca(fetch_ca(server_url, expected), path)


def core_ca_fingerprint(settings: SwarmSyncSettings | None = None) -> str | None:
    """The fingerprint of the CA this Core made for its API (what `worker token create` and `up` print); None
    with an admin's certificate or before any CA exists."""
    from swarmsync.settings import get_settings

    settings = settings or get_settings()
    ca = None if settings.tls_cert else own_ca(settings)
    return fingerprint(ca.read_bytes()) if ca is not None else None


def save_ca(pem: bytes, path: Path) -> Path:
    """Write a CA certificate (checked to be one) to `path` (0644; its folder made)."""
    fingerprint(pem)  # a certificate, or TLSError
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(path, pem, 0o644)
    return path


def is_verify_error(exc: BaseException) -> bool:
    """A connection refused because the server's certificate did not verify (httpx wraps ssl's error)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def probe_context(settings: SwarmSyncSettings) -> ssl.SSLContext:
    """For this host's own liveness probes of its API (`up` waiting for it): SwarmSync's CA alone; with an
    admin's certificate, that very certificate (pinned: the chain file as the only trust, any name, since
    the admin's names need not include 127.0.0.1)."""
    if settings.tls_cert:
        context = ssl.create_default_context(cafile=str(settings.tls_cert.expanduser()))
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.check_hostname = False
        return context
    ca = own_ca(settings)
    if ca is None:
        raise TLSError(f"no CA in {tls_dir(settings)}: the API has not made its certificate")
    return ssl.create_default_context(cafile=str(ca))
