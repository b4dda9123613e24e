"""GET /tls/ca.pem: the CA SwarmSync made for its own certificate (public material, no token)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from swarmsync.api.errors import responses
from swarmsync.settings import get_settings
from swarmsync.tls import own_ca

router = APIRouter(prefix="/tls", tags=["tls"])


@router.get("/ca.pem", response_class=Response, responses={
    200: {"content": {"application/x-pem-file": {}}, "description": "the CA certificate (PEM)"}, **responses(404)})
def ca_pem() -> Response:
    """The CA certificate clients verify the API with (`swarmsync login --ca`, `worker start --ca`); check its
    fingerprint (`sha256:...`, printed by `swarmsync tls show` on the server) before trusting it. 404 when the
    server uses an admin's certificate and has no CA of its own."""
    settings = get_settings()
    path = None if settings.tls_cert else own_ca(settings)
    if path is None:
        raise HTTPException(404, "this server has no CA of its own (an admin's certificate, or TLS off): "
                                 "ask the admin for the CA file")
    return Response(path.read_bytes(), media_type="application/x-pem-file",
                    headers={"Cache-Control": "no-cache"})
