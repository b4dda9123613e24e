"""What runs beside the API while it serves: the summary of refused requests (`refusals`), and Core's
lost-host check (`swarmsync.lost_hosts`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from swarmsync import lost_hosts
from swarmsync.auth import refusals
from swarmsync.settings import get_settings

log = logging.getLogger("swarmsync.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Every window, summarise the refusal counts of windows that have passed (`refusals`); at the end, close
    the worker gateway's connections to Prefect (if a worker used it)."""
    async def summarise() -> None:
        while True:
            await anyio.sleep(max(get_settings().audit_refusal_window_seconds, 1))
            try:
                await anyio.to_thread.run_sync(refusals.flush)
            except Exception as exc:  # noqa: BLE001 - a database or Redis hiccup: the next round catches up
                log.warning("audit refusal summary failed: %s", exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(summarise)
        if get_settings().lost_host_check:
            tg.start_soon(lost_hosts.watch)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
    if (gateway := getattr(app.state, "gateway", None)) is not None:
        await gateway.aclose()
    try:
        await anyio.to_thread.run_sync(refusals.flush_at_exit)
    except Exception as exc:  # noqa: BLE001
        log.warning("audit refusal summary at shutdown failed: %s", exc)
