"""Token secrets: random, prefixed by kind, stored only as SHA-256 (they are high-entropy)."""

from __future__ import annotations

import hashlib
import secrets

SESSION_PREFIX = "sss_"  # a login session (short-lived)
API_TOKEN_PREFIX = "ssk_"  # an API token (long-lived, named, scoped)


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="replace")).hexdigest()
