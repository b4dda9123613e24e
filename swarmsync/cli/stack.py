"""Stack commands: up, demo, doctor, dashboard, env (the embedded stack and its checks)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.text import Text

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.jobs import follow
from swarmsync.client import remote_configured

app = typer.Typer()


def _api_url() -> str:
    """`swarmsync.connection.api_url()`, imported here: it loads httpx, which `--help` does without."""
    from swarmsync.connection import api_url

    return api_url()


def _swarmsync_command() -> str:
    """`swarmsync.deployments.ports.swarmsync_command()`, imported when a command prints it (CLI start)."""
    from swarmsync.deployments.ports import swarmsync_command

    return swarmsync_command()


def _sigterm_as_interrupt() -> None:
    """`kill` of `swarmsync up` stops the stack like Ctrl-C does."""

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


PrefectUrl = Annotated[str | None, typer.Option(
    "--prefect-url", help="Use the Prefect server at this API URL (e.g. http://127.0.0.1:4200/api) instead of "
    "starting one (sets SWARMSYNC_API_URL)")]


def _use_prefect(url: str | None) -> None:
    from swarmsync.settings import get_settings

    if url:
        os.environ["SWARMSYNC_API_URL"] = url.rstrip("/")
        get_settings.cache_clear()


def hint_image() -> str:
    """An image the hints can name that runs here: the local offline busybox when it is there."""
    from swarmsync.images import LOCAL_BUSYBOX

    try:
        from swarmsync.docker_runner import docker_client

        docker_client().images.get(LOCAL_BUSYBOX)
        return LOCAL_BUSYBOX
    except Exception:  # noqa: BLE001 - no engine or no local image: the registry's busybox
        return "busybox"


@app.command()
def up(
    worker: Annotated[bool, typer.Option(help="Also start a worker on the job pool.")] = True,
    api: Annotated[bool, typer.Option(help="Also start the SwarmSync API on SWARMSYNC_API_PORT.")] = True,
    dashboard: Annotated[
        bool, typer.Option(help="Also start the dashboard on SWARMSYNC_DASHBOARD_PORT (needs the API).")
    ] = True,
    ha: Annotated[int | None, typer.Option(
        "--ha", min=1, max=16,
        help="Prefect API processes behind HAProxy (SWARMSYNC_PREFECT_API_PROCESSES); needs "
        "SWARMSYNC_PREFECT_REDIS_URL and Prefect on PostgreSQL. See docs/deployment.md.")] = None,
    prefect_url: PrefectUrl = None,
) -> None:
    """Start the embedded stack (Prefect server, database, pool, deployment, API, dashboard, worker) until Ctrl-C."""
    from swarmsync.deployments.stack import Stack, StackError
    from swarmsync.settings import get_settings

    if ha is not None:
        os.environ["SWARMSYNC_PREFECT_API_PROCESSES"] = str(ha)
        get_settings.cache_clear()
    _use_prefect(prefect_url)

    def serve(stack: Stack) -> None:
        with console.status("starting SwarmSync..."):
            stack.up(worker=worker, api=api, dashboard=dashboard)
        _serve_until_stopped(stack)

    _with_stack(Stack(), serve, StackError)


def _with_stack(stack: Any, run: Callable[[Any], None], stack_error: type[Exception]) -> None:
    """Run `run(stack)`; Ctrl-C (or SIGTERM) stops the stack, a part that fails says why (exit 1)."""
    _sigterm_as_interrupt()
    try:
        run(stack)
    except stack_error as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()


def _serve_until_stopped(stack: Any) -> None:
    """Print where everything is, then keep the stack up until a part of it fails (exit 1)."""
    _print_ready(stack.processes)
    while not (problem := stack.failed()):
        time.sleep(1)
    fail(problem, 1)


def _print_ready(processes: dict | None = None) -> None:
    from swarmsync.settings import get_settings

    processes = processes or {}
    url = _api_url()
    settings = get_settings()
    console.print(f"[green]SwarmSync is up.[/green] Prefect UI: {url.removesuffix('/api')}")
    if "api" in processes:
        console.print(f"  SwarmSync API: {settings.local_api_url} (OpenAPI at /docs)")
        _print_tls(settings)
    if "dashboard" in processes:
        console.print(f"  dashboard: http://{settings.dashboard_bind_host}:{settings.dashboard_port}")
        if settings.single_user:
            _print_login_link()
    console.print(f"  archive: {settings.archive_dir}   logs: {settings.home_dir / 'logs'}")
    console.print(f"  try: {_swarmsync_command()} submit --wait {hint_image()} echo hello", soft_wrap=True)
    console.print("  Ctrl-C stops the stack")


def _print_tls(settings: Any) -> None:
    """Where the API's CA is and its fingerprint (team mode, SwarmSync's own CA): what clients and workers trust."""
    from swarmsync.tls import fingerprint, own_ca

    if not settings.serves_tls:
        return
    ca = None if settings.tls_cert else own_ca(settings)
    if ca is None:
        console.print(f"  TLS: the admin's certificate {settings.tls_cert}", soft_wrap=True)
        return
    digest = fingerprint(ca.read_bytes())
    console.print(f"  TLS CA: {ca} ({digest})", soft_wrap=True)
    url = settings.public_url or settings.local_api_url
    console.print(f"  log in from elsewhere: {_swarmsync_command()} login {url} --fingerprint {digest}", soft_wrap=True)


def dashboard_url() -> str:
    """The dashboard as people reach it: SWARMSYNC_DASHBOARD_PUBLIC_URL, else where it listens (0.0.0.0 as
    127.0.0.1)."""
    from swarmsync.client import dashboard_settings

    return dashboard_settings().dashboard_url


def _print_login_link() -> None:
    from swarmsync.auth.login_links import login_link
    from swarmsync.settings import get_settings

    try:
        link = login_link(dashboard_url())
    except LookupError as exc:
        console.print(f"  (no login link: {exc})")
        return
    minutes = max(get_settings().login_link_ttl_seconds // 60, 1)
    console.print(f"  log in to the dashboard (one-time link, valid {minutes} min):\n    {link}", soft_wrap=True)
    console.print(f"  a new link: {_swarmsync_command()} login-link", soft_wrap=True)
    console.print(f"  more users: {_swarmsync_command()} user add NAME --role operator", soft_wrap=True)


@app.command("login-link")
def login_link_command() -> None:
    """Print a one-time dashboard login link for the local admin (embedded mode, on the machine
    that runs SwarmSync); the admin is created, with no usable password, if there is no user yet."""
    from swarmsync.auth.login_links import login_link
    from swarmsync.db import migrate
    from swarmsync.settings import get_settings

    settings = get_settings()
    if not settings.single_user:
        fail("login links are for embedded mode; in team mode log in with your account "
             "(an admin adds users with 'swarmsync user add NAME --role ROLE')")
    migrate()
    typer.echo(login_link(dashboard_url()))  # LookupError: exit 2 (console.EXIT_CODES)
    minutes = max(settings.login_link_ttl_seconds // 60, 1)
    err.print(f"one-time link for the dashboard, valid {minutes} min")


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option(help="Keep the stack up after the demo job.")] = True,
    prefect_url: PrefectUrl = None,
) -> None:
    """Start the stack, run a sample container job, print its output and where things are."""
    from swarmsync import jobs
    from swarmsync.deployments.stack import Stack, StackError

    _use_prefect(prefect_url)
    from swarmsync.docker_runner import docker_client
    from swarmsync.doctor import check_docker
    from swarmsync.images import ImageUnavailable, demo_image

    docker_check = check_docker()
    if not docker_check.ok:
        fail(f"No Docker engine answers: {docker_check.detail}\n"
             "Set one up with: sudo bash infra/host-setup.sh demo (on Debian/Ubuntu it installs docker.io and "
             "starts dockerd; `make demo` runs it first)")
    try:
        image = demo_image(docker_client())
    except ImageUnavailable as exc:
        fail(str(exc))

    def run_demo(stack: Stack) -> None:
        with console.status("starting SwarmSync..."):
            stack.up()
        job = jobs.submit(image, "echo 'hello from SwarmSync'; uname -a; date", tags=["demo"])
        console.print(f"submitted demo job {job.id} ({image})")
        code = follow(job)
        result = job.result()
        console.print(f"[bold]job {result.state.lower()}[/bold]: {result.message}")
        console.print(f"  archived at: {result.archive_location}")
        console.print(f"  .txt output: {_swarmsync_command()} result {job.id}", soft_wrap=True)
        console.print(f"  in Prefect:  {_api_url().removesuffix('/api')}/runs/flow-run/{job.id}")
        if keep_running:
            _serve_until_stopped(stack)
        raise typer.Exit(code)

    _with_stack(Stack(), run_demo, StackError)


@app.command()
def doctor() -> None:
    """Check each part (Prefect API, Docker, database, Redis, workers); non-zero if one is down.
    Pointed at a SwarmSync API (SWARMSYNC_URL or `swarmsync login`), the server's checks through it."""
    from swarmsync.doctor import remote_checks, run_checks

    table = DataTable("part", "status", "detail")
    failed = False
    for check in remote_checks() if remote_configured() else run_checks():
        failed |= check.required and not check.ok
        table.add_row(check.part, Text("ok", style="green") if check.ok else Text("down", style="red"), check.detail)
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command()
def dashboard() -> None:
    """Start the Streamlit dashboard on SWARMSYNC_DASHBOARD_PORT (talks to the SwarmSync API) until Ctrl-C."""
    from swarmsync.deployments.stack import dashboard_command
    from swarmsync.settings import get_settings

    settings = get_settings()
    command = dashboard_command(settings)  # StackError: exit 1 (console.EXIT_CODES)
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
    typer.echo(f"export PREFECT_API_URL={_api_url()}")
