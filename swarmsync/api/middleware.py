"""ASGI middleware of the API: credentials never in URLs; body size and NUL limits."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarmsync.api.errors import error_response

SECRET_QUERY_NAMES = {"token", "access_token", "api_key", "apikey", "password", "auth"}
# PUT bodies that are bytes, not text (archive chunks from worker hosts, written to files, never to
# the database): only their size is limited, NUL bytes are theirs to carry.
BINARY_BODY_PATHS = ("/worker/archives/",)


class RefuseSecretsInUrls:
    """Tokens and passwords belong in headers and bodies, never in URLs (which end up in logs)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            names = {k.lower() for k, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)}
            raw = scope["query_string"].decode("latin-1")
            if names & SECRET_QUERY_NAMES or "ssk_" in raw or "sss_" in raw:
                response = error_response(
                    400, "credentials are not accepted in URLs: send 'Authorization: Bearer <token>'")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestLimits:
    """413 for bodies over SWARMSYNC_MAX_BODY_BYTES (declared or streamed); 400 for NUL
    characters anywhere in the URL or body (PostgreSQL cannot store them in text), except in the
    PUT bodies of `BINARY_BODY_PATHS`."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = error_response(413, f"request body larger than {self.max_bytes} bytes (SWARMSYNC_MAX_BODY_BYTES)")
        has_nul = error_response(400, "NUL characters (\\u0000) are not accepted")
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in url or b"\x00" in url or "\x00" in scope.get("path", ""):
            await has_nul(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await too_big(scope, receive, send)
            return
        binary = scope.get("method") == "PUT" and scope.get("path", "").startswith(BINARY_BODY_PATHS)
        seen = 0
        tail = b""
        refusal: JSONResponse | None = None

        async def limited() -> Message:
            nonlocal seen, tail, refusal
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                window = tail + body
                if seen > self.max_bytes:
                    refusal = too_big
                elif not binary and (b"\\u0000" in window or b"\x00" in window):
                    refusal = has_nul
                if refusal is not None:
                    return {"type": "http.disconnect"}  # the app stops reading; the refusal is sent below
                tail = window[-6:]
            return message

        async def guarded_send(message: Message) -> None:
            if refusal is None:
                await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            await refusal(scope, receive, send)
