"""Pool commands: create a pool (with host policy and its job deployment), show its policy."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from swarmsync.cli.console import console, fail

app = typer.Typer(no_args_is_help=True, help="Work pools: Docker hosts and their policy.")


@app.command("create")
def create(
    name: str,
    allow_privileged: Annotated[bool | None, typer.Option(help="Allow privileged containers")] = None,
    allow_host_network: Annotated[bool | None, typer.Option(help="Allow network 'host'")] = None,
    allow_gpu: Annotated[bool | None, typer.Option(help="Allow GPU requests")] = None,
    max_cpu: Annotated[float | None, typer.Option(help="Most CPU cores one job may ask for")] = None,
    max_memory: Annotated[str | None, typer.Option(help="Most memory one job may ask for, e.g. 4g")] = None,
    max_pids: Annotated[int | None, typer.Option(help="Most processes one job may ask for")] = None,
    max_timeout: Annotated[float | None, typer.Option(help="Longest timeout in seconds")] = None,
    allow_host_files: Annotated[bool | None, typer.Option(help="Allow worker-host files (inputs[].source)")] = None,
    allow_root_user: Annotated[bool | None, typer.Option(help="Allow jobs to run as root (user root / uid 0)")] = None,
    max_gpus: Annotated[int | None, typer.Option(help="Most GPUs one job may ask for")] = None,
    default_cpu: Annotated[float | None, typer.Option(help="CPU cores for jobs that name none")] = None,
    default_memory: Annotated[str | None, typer.Option(help="Memory for jobs that name none")] = None,
    default_pids_limit: Annotated[int | None, typer.Option(help="Process limit for jobs that name none")] = None,
    default_timeout: Annotated[float | None, typer.Option(help="Timeout (s) for jobs that name none")] = None,
    allowed_network: Annotated[
        list[str] | None, typer.Option(help="A network jobs may join besides the default one (repeat)")
    ] = None,
    allowed_role: Annotated[list[str] | None, typer.Option(help="A role that may use the pool (repeat)")] = None,
    allowed_user: Annotated[list[str] | None, typer.Option(help="A user who may use the pool (repeat)")] = None,
    allowed_project: Annotated[
        list[str] | None, typer.Option(help="A project whose jobs may run on the pool (repeat; none: every project)")
    ] = None,
    pull_policy: Annotated[str | None, typer.Option(help="always, if-not-present or never")] = None,
    default_network: Annotated[str | None, typer.Option(help="Network for jobs that name none")] = None,
    docker_host: Annotated[
        str | None, typer.Option(help="Docker Host block (prefect-docker) naming the pool's engine")
    ] = None,
    registry_credentials: Annotated[
        str | None, typer.Option(help="Docker Registry Credentials block used before pulls")
    ] = None,
    archive_block: Annotated[str | None, typer.Option(help="Filesystem block slug for this pool's archives")] = None,
    max_output_bytes: Annotated[
        str | None, typer.Option(help="Most stdout+stderr of one job, e.g. 500m (default 1g); the job is stopped")
    ] = None,
    max_files_bytes: Annotated[
        str | None, typer.Option(help="Most output_dir bytes archived per job, e.g. 2g (default 1g)")
    ] = None,
    default_user: Annotated[
        str | None, typer.Option(help="User for jobs that name none, e.g. 65534:65534 (then no job runs as its "
                                 "image's USER)")
    ] = None,
    check_image_user: Annotated[
        bool | None, typer.Option(help="Refuse jobs naming no user whose image runs as root (no default_user)")
    ] = None,
    shared_network: Annotated[
        bool | None, typer.Option(help="Let jobs on the default network reach each other (default: isolated)")
    ] = None,
    read_only_rootfs: Annotated[
        bool | None, typer.Option(help="Read-only root filesystem; /tmp is a tmpfs of --scratch-size")
    ] = None,
    scratch_size: Annotated[str | None, typer.Option(help="Size of /tmp with a read-only root, e.g. 64m")] = None,
    storage_size: Annotated[
        str | None, typer.Option(help="Cap of each container's writable layer, e.g. 1g (engines with storage-opt "
                                 "size only: overlay2 on xfs with pquota)")
    ] = None,
    allowed_image: Annotated[
        list[str] | None, typer.Option(help="An image pattern jobs may use, e.g. 'docker.io/library/*' (repeat; "
                                       "none: any image)")
    ] = None,
    require_digest: Annotated[bool | None, typer.Option(help="Only images pinned by @sha256 digest")] = None,
) -> None:
    """Create a pool and its `container-job/NAME` deployment; on an existing pool, change only the settings given."""
    from swarmsync.deployments.pools import create_pool
    from swarmsync.policy import parse_size

    policy = {k: v for k, v in {
        "allow_privileged": allow_privileged, "allow_host_network": allow_host_network,
        "allow_gpu": allow_gpu, "max_cpu": max_cpu, "max_memory": max_memory, "max_pids": max_pids,
        "max_timeout": max_timeout, "pull_policy": pull_policy, "default_network": default_network,
        "docker_host": docker_host, "registry_credentials": registry_credentials,
        "archive_block": archive_block, "allow_host_files": allow_host_files, "allow_root_user": allow_root_user,
        "max_gpus": max_gpus, "default_cpu": default_cpu, "default_memory": default_memory,
        "default_pids_limit": default_pids_limit, "default_timeout": default_timeout,
        "allowed_networks": allowed_network, "allowed_roles": allowed_role, "allowed_users": allowed_user,
        "allowed_projects": allowed_project,
        "default_user": default_user, "check_image_user": check_image_user, "shared_network": shared_network,
        "read_only_rootfs": read_only_rootfs, "allowed_images": allowed_image, "require_digest": require_digest,
    }.items() if v is not None}
    try:
        for key, size in (("max_output_bytes", max_output_bytes), ("max_files_bytes", max_files_bytes),
                          ("scratch_size", scratch_size), ("storage_size", storage_size)):
            if size is not None:
                policy[key] = parse_size(size)
        deployment = create_pool(name, **policy)
    except ValueError as exc:
        fail(str(exc))
    console.print(f"pool {name!r} ready; jobs go to it with: swarmsync submit --pool {name} ...")
    console.print(f"deployment: {deployment}; start a worker: swarmsync worker start --pool {name}")


@app.command("show")
def show(name: Annotated[str | None, typer.Argument(help="Pool (default: SWARMSYNC_WORK_POOL)")] = None) -> None:
    """Show a pool's host policy."""
    from swarmsync.deployments.pools import pool_policy

    table = Table("setting", "value")
    for key, value in pool_policy(name).items():
        table.add_row(key, str(value))
    console.print(table)
