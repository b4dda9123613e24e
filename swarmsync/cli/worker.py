"""`swarmsync worker start`: a SwarmSync worker, as `prefect worker start --type swarmsync`."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings

from swarmsync.cli.console import console
from swarmsync.connection import prefect_api
from swarmsync.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Run a SwarmSync worker.")


@app.command("start")
def start(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Work pool (default: SWARMSYNC_WORK_POOL)")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: generated)")] = None,
    limit: Annotated[int, typer.Option(help="Most jobs run at once")] = 50,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Only these work queues (repeatable)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", "-l",
        help="Host label (repeatable, e.g. gpu, region=eu): also poll the queues of jobs requiring "
        "these labels (see swarmsync.routing; submit with --queue gpu+region=eu)")] = None,
    query_seconds: Annotated[float, typer.Option(
        help="Seconds between polls for new runs (a fallback: new runs and free slots wake the worker at once)"
    )] = 2.0,
    with_healthcheck: Annotated[bool, typer.Option(
        help="Serve Prefect's worker health check (GET /health on PREFECT_WORKER_WEBSERVER_HOST:PORT, "
             "default 0.0.0.0:8080), as `prefect worker start --with-healthcheck`"
    )] = False,
) -> None:
    """Start a SwarmSync worker (same as `prefect worker start --type swarmsync`)."""
    from swarmsync.routing import worker_queues
    from swarmsync.worker import SwarmSyncWorker

    queues = list(queue or [])
    if label:
        try:
            queues += [q for q in worker_queues(label) if q not in queues]
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--label") from exc

    async def run() -> None:
        worker = SwarmSyncWorker(
            work_pool_name=pool or get_settings().work_pool, name=name, limit=limit,
            work_queues=queues or None, create_pool_if_not_found=True,
        )
        await worker.start(printer=console.print, with_healthcheck=with_healthcheck)

    with prefect_api(), temporary_settings({PREFECT_WORKER_QUERY_SECONDS: query_seconds}):
        try:
            anyio.run(run)
        except KeyboardInterrupt:
            pass
