"""Pool commands: create a pool (with host policy and its job deployment), show its policy."""

from __future__ import annotations

from typing import Annotated

import typer

from swarmsync.cli.catalogue_options import CatalogueFields, OptionsOnFirstUse, catalogue_options
from swarmsync.cli.console import DataTable, console, fail

app = typer.Typer(no_args_is_help=True, help="Work pools: Docker hosts and their policy.")


@app.command("create", cls=OptionsOnFirstUse)
@catalogue_options("swarmsync.policy:HostPolicy")
def create(
    name: str,
    fields: CatalogueFields = None,
    pull_policy: Annotated[str | None, typer.Option(help="always, if-not-present or never")] = None,
    docker_host: Annotated[
        str | None, typer.Option(help="Docker Host block (prefect-docker) naming the pool's engine")
    ] = None,
    registry_credentials: Annotated[
        str | None, typer.Option(help="Docker Registry Credentials block used before pulls")
    ] = None,
    archive_block: Annotated[str | None, typer.Option(help="Filesystem block slug for this pool's archives")] = None,
) -> None:
    """Create a pool and its `container-job/NAME` deployment; on an existing pool, change only the settings given."""
    from swarmsync.deployments.pools import create_pool

    policy = {**{k: v for k, v in {
        "pull_policy": pull_policy, "docker_host": docker_host, "registry_credentials": registry_credentials,
        "archive_block": archive_block,
    }.items() if v is not None}, **(fields or {})}
    try:
        deployment = create_pool(name, **policy)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"pool {name!r} ready; jobs go to it with: swarmsync submit --pool {name} ...")
    console.print(f"deployment: {deployment}; start a worker: swarmsync worker start --pool {name}")


@app.command("show")
def show(name: Annotated[str | None, typer.Argument(help="Pool (default: SWARMSYNC_WORK_POOL)")] = None) -> None:
    """Show a pool's host policy."""
    from swarmsync.deployments.pools import pool_policy

    table = DataTable("setting", "value")
    for key, value in pool_policy(name).items():
        table.add_row(key, str(value))
    console.print(table)
