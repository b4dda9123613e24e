"""`swarmsync usage`: finished jobs' measured use (CPU, peak memory, block I/O, network, wall time) summed
per user, project, pool or image (swarmsync.usage_report). Through the API when SWARMSYNC_URL is set (or
after `swarmsync login`: the projects you are a member of); otherwise from SwarmSync's database on the
server host, as its administrator."""

from __future__ import annotations

from typing import Annotated

import typer

from swarmsync.cli.console import DataTable, console, fail
from swarmsync.cli.target import project_admin

app = typer.Typer()


@app.command("usage")
def usage(
    project: Annotated[str | None, typer.Option("--project", "-P", help="Only this project's jobs")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's jobs")] = None,
    since: Annotated[str | None, typer.Option(help="Jobs finished within this long: 7d, 12h, 1w")] = None,
    by: Annotated[str, typer.Option(help="Sum per user, project, pool or image")] = "project",
    as_json: Annotated[bool, typer.Option("--json", help="The rows as JSON (GET /usage)")] = False,
) -> None:
    """What finished jobs used, summed per project (or --by user|pool|image), largest CPU first."""
    try:
        rows = project_admin().usage(by, project, user, since)
    except ValueError as exc:  # an unknown --by, a --since not understood
        fail(str(exc))
    if as_json:
        console.print_json(data=rows)
        return
    table = DataTable()
    table.add_column(by, no_wrap=True)  # a name or an image reference, whole
    for column in ("jobs", "CPU s", "peak memory", "disk read", "disk written", "net in", "net out", "wall s"):
        table.add_column(column, justify="right")
    from swarmsync.policy import human_size

    for row in rows:
        table.add_row(row["key"] or "-", str(row["jobs"]), f"{row['cpu_seconds']:.1f}",
                      human_size(row["memory_peak_bytes"]), human_size(row["block_read_bytes"]),
                      human_size(row["block_write_bytes"]), human_size(row["net_rx_bytes"]),
                      human_size(row["net_tx_bytes"]), f"{row['wall_seconds']:.1f}")
    console.print(table)
