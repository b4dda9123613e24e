"""`swarmsync tls show|fetch`: the API's certificate authority, its fingerprint, and trusting it from elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmsync.cli.console import console, err, fail

app = typer.Typer(no_args_is_help=True, help="TLS of the SwarmSync API: its CA and fingerprint.")


@app.command("show")
def show() -> None:
    """On the server: the CA the API's certificate is signed by (made now when missing, as `up` and `api` do in
    team mode), its fingerprint, and the server certificate's names."""
    from swarmsync.settings import get_settings
    from swarmsync.tls import cert_names, fingerprint, server_files, tls_dir

    settings = get_settings()
    if settings.tls_cert:
        fail(f"the API serves the admin's certificate SWARMSYNC_TLS_CERT={settings.tls_cert}: clients trust its "
             "issuer (system trust, or SWARMSYNC_CA_FILE); SwarmSync has no CA of its own", 2)
    cert, _key = server_files(settings)  # TLSError: exit 2 (console.EXIT_CODES)
    from cryptography import x509

    ca = tls_dir(settings) / "ca.pem"
    names = ", ".join(sorted(cert_names(x509.load_pem_x509_certificate(cert.read_bytes()))))
    console.print(f"CA:          {ca}", soft_wrap=True)
    console.print(f"fingerprint: {fingerprint(ca.read_bytes())}", soft_wrap=True)
    console.print(f"server cert: {cert} ({names})", soft_wrap=True)
    if not settings.serves_tls:
        err.print("(the API serves plain HTTP now: embedded mode, or SWARMSYNC_TLS=off)")


@app.command("fetch")
def fetch(
    url: Annotated[str, typer.Argument(help="The SwarmSync API, e.g. https://core.example.org:4280")],
    fingerprint_: Annotated[str, typer.Option("--fingerprint", help="The CA's fingerprint as the admin gave it "
                                              "(sha256:..., from 'swarmsync tls show')")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the CA")] = Path("ca.pem"),
) -> None:
    """Download the server's CA (GET /tls/ca.pem) and keep it only if its fingerprint is the one given; then use
    it with --ca or SWARMSYNC_CA_FILE."""
    from swarmsync.tls import TLSError, fetch_ca, fingerprint, save_ca

    try:
        pem = fetch_ca(url, fingerprint_)
    except TLSError as exc:
        fail(str(exc), 4)
    path = save_ca(pem, out)
    err.print(f"wrote {path} ({fingerprint(pem)})")
