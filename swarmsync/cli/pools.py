"""Pool commands: create a pool (with host policy and its job deployment), show its policy."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

pool_app = typer.Typer(no_args_is_help=True, help="Work pools: Docker hosts and their policy.")
console = Console()


@pool_app.command("create")
def create(
    name: str,
    allow_privileged: bool = typer.Option(None, help="Allow privileged containers"),
    allow_host_network: bool = typer.Option(None, help="Allow network 'host'"),
    allow_gpu: bool = typer.Option(None, help="Allow GPU requests"),
    max_cpu: float = typer.Option(None, help="Most CPU cores one job may ask for"),
    max_memory: str = typer.Option(None, help="Most memory one job may ask for, e.g. 4g"),
    max_pids: int = typer.Option(None, help="Most processes one job may ask for"),
    max_timeout: float = typer.Option(None, help="Longest timeout in seconds"),
    pull_policy: str = typer.Option(None, help="always, if-not-present or never"),
    default_network: str = typer.Option(None, help="Network for jobs that name none"),
    docker_host: str = typer.Option(None, help="Docker Host block (prefect-docker) naming the pool's engine"),
    registry_credentials: str = typer.Option(
        None, help="Docker Registry Credentials block used before pulls"
    ),
    archive_block: str = typer.Option(None, help="Filesystem block slug for this pool's archives"),
) -> None:
    """Create a pool and its `container-job/NAME` deployment; on an existing pool, change only the settings given."""
    from swarmsync.deployments.pools import create_pool

    policy = {k: v for k, v in {
        "allow_privileged": allow_privileged, "allow_host_network": allow_host_network,
        "allow_gpu": allow_gpu, "max_cpu": max_cpu, "max_memory": max_memory, "max_pids": max_pids,
        "max_timeout": max_timeout, "pull_policy": pull_policy, "default_network": default_network,
        "docker_host": docker_host, "registry_credentials": registry_credentials,
        "archive_block": archive_block,
    }.items() if v is not None}
    try:
        deployment = create_pool(name, **policy)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"pool {name!r} ready; jobs go to it with: swarmsync submit --pool {name} ...")
    console.print(f"deployment: {deployment}; start a worker: swarmsync worker start --pool {name}")


@pool_app.command("show")
def show(name: str = typer.Argument(None, help="Pool (default: SWARMSYNC_WORK_POOL)")) -> None:
    """Show a pool's host policy."""
    from swarmsync.deployments.pools import pool_policy

    table = Table("setting", "value")
    for key, value in pool_policy(name).items():
        table.add_row(key, str(value))
    console.print(table)
