"""`swarmsync` entry point: stack commands here, job commands in `jobs.py`."""

from __future__ import annotations

import signal
import time

import anyio
import typer
from rich.console import Console
from rich.table import Table

from swarmsync.cli import accounts as account_commands
from swarmsync.cli import jobs as job_commands
from swarmsync.cli.pools import pool_app
from swarmsync.cli.schedules import schedule_app, template_app
from swarmsync.cli.tokens import token_app
from swarmsync.cli.users import user_app
from swarmsync.connection import api_url
from swarmsync.settings import get_settings

app = typer.Typer(
    name="swarmsync", no_args_is_help=True, add_completion=False,
    help="Run container jobs on Docker hosts through Prefect: now, later, or on a schedule.",
)
worker_app = typer.Typer(no_args_is_help=True, help="Run a SwarmSync worker.")
app.add_typer(worker_app, name="worker")
app.add_typer(pool_app, name="pool")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(schedule_app, name="schedule")
app.add_typer(template_app, name="template")
job_commands.register(app)
account_commands.register(app)
console = Console()


def _sigterm_as_interrupt() -> None:
    """`kill` of `swarmsync up` stops the stack like Ctrl-C does."""

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@app.command()
def up(
    worker: bool = typer.Option(True, help="Also start a worker on the job pool."),
    api: bool = typer.Option(True, help="Also start the SwarmSync API on SWARMSYNC_API_PORT."),
    dashboard: bool = typer.Option(True, help="Also start the dashboard on SWARMSYNC_DASHBOARD_PORT (needs the API)."),
) -> None:
    """Start the embedded stack (Prefect server, database, pool, deployment, API, dashboard, worker) until Ctrl-C."""
    from swarmsync.deployments.stack import Stack, StackError

    stack = Stack()
    _sigterm_as_interrupt()
    try:
        with console.status("starting SwarmSync..."):
            stack.up(worker=worker, api=api, dashboard=dashboard)
        _print_ready(stack.processes)
        while not (problem := stack.failed()):
            time.sleep(1)
        console.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()


def _print_ready(processes: dict | None = None) -> None:
    processes = processes or {}
    url = api_url()
    settings = get_settings()
    console.print(f"[green]SwarmSync is up.[/green] Prefect UI: {url.removesuffix('/api')}")
    if "api" in processes:
        console.print(f"  SwarmSync API: http://{settings.api_bind_host}:{settings.api_port} (OpenAPI at /docs)")
    if "dashboard" in processes:
        console.print(f"  dashboard: http://{settings.dashboard_bind_host}:{settings.dashboard_port}")
    console.print(f"  archive: {get_settings().archive_dir}   logs: {get_settings().home_dir / 'logs'}")
    console.print("  try: swarmsync submit --wait busybox echo hello   (Ctrl-C stops the stack)")


@app.command()
def demo(
    keep_running: bool = typer.Option(True, help="Keep the stack up after the demo job."),
) -> None:
    """Start the stack, run a sample container job, print its output and where things are."""
    from swarmsync import jobs
    from swarmsync.deployments.stack import Stack, StackError
    from swarmsync.docker_runner import docker_client
    from swarmsync.doctor import check_docker
    from swarmsync.images import ImageUnavailable, demo_image

    docker_check = check_docker()
    if not docker_check.ok:
        console.print(f"[red]No Docker engine answers:[/red] {docker_check.detail}\n"
                      "Install and start one, e.g.: apt-get install -y docker.io && dockerd &")
        raise typer.Exit(2)
    try:
        image = demo_image(docker_client())
    except ImageUnavailable as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    stack = Stack()
    _sigterm_as_interrupt()
    try:
        with console.status("starting SwarmSync..."):
            stack.up()
        job = jobs.submit(image, "echo 'hello from SwarmSync'; uname -a; date", tags=["demo"])
        console.print(f"submitted demo job {job.id} ({image})")
        code = job_commands.follow(job)
        result = job.result()
        console.print(f"[bold]job {result.state.lower()}[/bold]: {result.message}")
        console.print(f"  archived at: {result.archive_location}")
        console.print(f"  .txt output: swarmsync result {job.id}")
        console.print(f"  in Prefect:  {api_url().removesuffix('/api')}/runs/flow-run/{job.id}")
        if keep_running:
            _print_ready(stack.processes)
            while not stack.failed():
                time.sleep(1)
        raise typer.Exit(code)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()


@app.command()
def doctor() -> None:
    """Check each part (Prefect API, Docker, database, Redis, workers); non-zero if one is down.
    Pointed at a SwarmSync API (SWARMSYNC_URL or `swarmsync login`), the server's checks through it."""
    from swarmsync.client import remote_configured
    from swarmsync.doctor import remote_checks, run_checks

    table = Table("part", "status", "detail")
    failed = False
    for check in remote_checks() if remote_configured() else run_checks():
        failed |= check.required and not check.ok
        table.add_row(check.part, "[green]ok[/green]" if check.ok else "[red]down[/red]", check.detail)
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command()
def dashboard() -> None:
    """Start the Streamlit dashboard on SWARMSYNC_DASHBOARD_PORT (talks to the SwarmSync API) until Ctrl-C."""
    import os
    import subprocess

    from swarmsync.deployments.stack import StackError, dashboard_command

    settings = get_settings()
    try:
        command = dashboard_command(settings)
    except StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"dashboard: http://{settings.dashboard_bind_host}:{settings.dashboard_port}")
    _sigterm_as_interrupt()
    proc = subprocess.Popen(command, env=os.environ.copy())
    try:
        raise typer.Exit(proc.wait())
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=15)


@app.command()
def env() -> None:
    """Print the PREFECT_API_URL line so Prefect's CLI talks to SwarmSync's server."""
    typer.echo(f"export PREFECT_API_URL={api_url()}")


@worker_app.command("start")
def worker_start(
    pool: str = typer.Option(None, "--pool", "-p", help="Work pool (default: SWARMSYNC_WORK_POOL)"),
    name: str = typer.Option(None, help="Worker name (default: generated)"),
    limit: int = typer.Option(50, help="Most jobs run at once"),
    queue: list[str] = typer.Option([], "--queue", "-q", help="Only these work queues (repeatable)"),
    query_seconds: float = typer.Option(
        2.0, help="Seconds between polls for new runs (a fallback: new runs and free slots wake the worker at once)"
    ),
) -> None:
    """Start a SwarmSync worker (same as `prefect worker start --type swarmsync`)."""
    from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings

    from swarmsync.connection import prefect_api
    from swarmsync.worker import SwarmSyncWorker

    async def run() -> None:
        worker = SwarmSyncWorker(
            work_pool_name=pool or get_settings().work_pool, name=name, limit=limit,
            work_queues=list(queue) or None, create_pool_if_not_found=True,
        )
        await worker.start(printer=console.print)

    with prefect_api(), temporary_settings({PREFECT_WORKER_QUERY_SECONDS: query_seconds}):
        try:
            anyio.run(run)
        except KeyboardInterrupt:
            pass


def main() -> None:
    """Console entry point: connection problems become one clear line, not a traceback."""
    import httpx

    from swarmsync.auth.roles import AuthError
    from swarmsync.auth.users import AccountError, UserNotFound
    from swarmsync.client import APIError

    try:
        app()
    except (APIError, AuthError, AccountError, UserNotFound, LookupError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise SystemExit(4 if isinstance(exc, (APIError, AuthError)) else 2) from None
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 401:
            raise
        from swarmsync.doctor import prefect_auth_hint

        Console(stderr=True).print(
            f"[red]error:[/red] the Prefect API at {api_url()} refused the request (401): {prefect_auth_hint()}"
        )
        raise SystemExit(4) from None
    except httpx.ConnectError:
        Console(stderr=True).print(
            f"[red]error:[/red] cannot reach the Prefect API at {api_url()}: "
            "is the stack up? ('swarmsync up', or set SWARMSYNC_API_URL)"
        )
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
