"""Finding the Prefect server: SwarmSync's CLI and Python API need no Prefect set-up.

Order: SWARMSYNC_API_URL, then Prefect's own PREFECT_API_URL (env or profile), then
the embedded stack's http://SWARMSYNC_HOST:SWARMSYNC_PORT/api.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import httpx

from swarmsync.settings import get_settings

if TYPE_CHECKING:
    from prefect.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def api_url() -> str:
    settings = get_settings()
    if settings.api_url:
        return settings.api_url
    # imported here: the CLI names this URL in errors of commands that otherwise never load Prefect
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or settings.prefect_api_url


@contextmanager
def prefect_api() -> Iterator[str]:
    """Point Prefect's client at SwarmSync's server (with its basic-auth string, when
    SWARMSYNC_PREFECT_AUTH_STRING is set) for the duration of the block.

    Prefect's clients made inside share one TLS context per CA bundle (prefect_internals.share_tls_contexts).
    Building a Prefect `Settings` object re-reads the environment (~0.2 s), so the derived
    settings are built once per (current settings, URL, auth) and reused for later calls.
    """
    import prefect.context
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    from swarmsync.prefect_internals import share_tls_contexts

    share_tls_contexts()  # one TLS context per CA bundle for Prefect's clients, not one per client
    url = api_url()
    updates = {}
    if PREFECT_API_URL.value() != url:
        updates[PREFECT_API_URL] = url
    auth = get_settings().prefect_auth_string
    if auth is not None and PREFECT_API_AUTH_STRING.value() != auth.get_secret_value():
        updates[PREFECT_API_AUTH_STRING] = auth.get_secret_value()
    if not updates:
        yield url
        return
    context = prefect.context.get_settings_context()
    key = (id(context.settings), url, auth.get_secret_value() if auth is not None else None)
    settings = _derived_settings.get(key)
    if settings is None or settings[0] is not context.settings:
        settings = _derived_settings[key] = (context.settings, context.settings.copy_with_update(updates=updates))
    with prefect.context.SettingsContext(profile=context.profile, settings=settings[1]):
        yield url


# (id of the base settings, url, auth string) -> (base settings, base settings updated with them)
_derived_settings: dict[tuple[int, str, str | None], tuple[Settings, Settings]] = {}


def uses_prefect_api(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with prefect_api():
            return fn(*args, **kwargs)

    return wrapper


def api_healthy(url: str | None = None, timeout: float = 2.0) -> bool:
    """The Prefect API at `url` (default: the configured one) answers its health probe."""
    try:
        return httpx.get(f"{url or api_url()}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
