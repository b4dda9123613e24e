"""Running the API: `swarmsync api` (and `swarmsync up`) call `serve()`."""

from __future__ import annotations

import logging

from swarmsync.settings import get_settings


class _NoSecrets(logging.Filter):
    """Belt and braces: drop any log record that carries a SwarmSync token."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "sss_" not in text and "ssk_" not in text


def prepare() -> None:
    """Migrations and the first admin from SWARMSYNC_ADMIN_USER/PASSWORD (only when no user exists)."""
    from swarmsync.auth.users import ensure_first_admin
    from swarmsync.db import migrate

    migrate()
    if admin := ensure_first_admin():
        print(f"created the first admin {admin.username!r}", flush=True)


def serve(host: str | None = None, port: int | None = None) -> None:
    # Prefect sets up its logging once per process, when `prefect.main` is first imported (`from prefect import
    # flow`, ...), and that clears uvicorn's access log handlers: loaded first, before uvicorn sets up its own,
    # not at the first request that needs it (after which the API's access log showed no more requests)
    import prefect.main  # noqa: F401
    import uvicorn

    from swarmsync.api.app import create_app
    from swarmsync.connection import prefect_api

    settings = get_settings()
    tls = tls_options()
    prepare()
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_NoSecrets())
    with prefect_api():
        uvicorn.run(create_app(), host=host or settings.api_bind_host, port=port or settings.api_port,
                    log_level="info", server_header=False,
                    proxy_headers=False,  # X-Forwarded-For is read by deps.address, per SWARMSYNC_TRUSTED_PROXIES
                    **tls)


def tls_options() -> dict[str, str]:
    """uvicorn's `ssl_certfile`/`ssl_keyfile` when the API serves HTTPS (team mode, SWARMSYNC_TLS): the admin's
    certificate, else SwarmSync's own (its CA made once, the server certificate made or renewed now)."""
    from swarmsync.tls import fingerprint, own_ca, server_files

    settings = get_settings()
    if not settings.serves_tls:
        if not settings.single_user:
            print("TLS is off (SWARMSYNC_TLS=off): serving plain HTTP; only behind a TLS-terminating proxy",
                  flush=True)
        return {}
    cert, key = server_files(settings)
    if not settings.tls_cert and (ca := own_ca(settings)) is not None:
        print(f"serving HTTPS; CA {ca} (fingerprint {fingerprint(ca.read_bytes())})", flush=True)
    else:
        print(f"serving HTTPS with {cert}", flush=True)
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
