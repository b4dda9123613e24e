"""`swarmsync alert add|list|remove`: a project's alerts (Prefect Automations posting to a webhook when its
jobs fail, time out, run out of memory, lose their host, or end). They call `swarmsync.alerts` on the
server host, or the SwarmSync API's /alerts when SWARMSYNC_URL is set or `swarmsync login` stored one."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.job_arguments import user_errors
from swarmsync.cli.options import AllProjects, Project
from swarmsync.cli.target import client, project
from swarmsync.client import APIError, remote_configured
from swarmsync.errors import InvalidError, NotFoundError

if TYPE_CHECKING:
    from swarmsync import alerts

# swarmsync.alerts (Prefect) is imported where it is used: through the API, `alert list|remove` need no Prefect.

app = typer.Typer(no_args_is_help=True, help="Alerts: a webhook told when a project's jobs fail (Prefect Automations).")

On = Annotated[str, typer.Option("--on", help="failed, timed-out, oom, host-lost or any-final")]


class LocalAlerts:
    """`swarmsync.alerts` on the server host (its administrator: no owner recorded)."""

    def alerts(self, project: str | None = None) -> list[dict[str, Any]]:
        from swarmsync import alerts

        return [_row(a) for a in alerts.list_alerts([project] if project else None)]

    def add_alert(self, name: str, on: str, webhook: str, *, project: str | None = None,
                  pool: str | None = None) -> dict[str, Any]:
        from swarmsync import alerts

        return _row(alerts.create_alert(name, on, webhook, project=project, pool=pool))

    def remove_alert(self, name: str, project: str | None = None) -> None:
        from swarmsync import alerts

        alerts.delete_alert(name, project)


def _row(alert: alerts.Alert) -> dict[str, Any]:
    row = asdict(alert)
    row["last_delivery"] = row.pop("delivery")
    return row


def target() -> Any:
    return client() if remote_configured() else LocalAlerts()


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Alert name: lowercase letters, digits, dashes")],
    on: On,
    webhook: Annotated[str, typer.Option("--webhook", help="The URL to POST to (stored as your secret)")],
    pool: Annotated[str | None, typer.Option("--pool", help="Only jobs of this pool")] = None,
    project_: Project = None,
) -> None:
    """Add an alert: POST to WEBHOOK when a job of the project (and pool) matches --on."""
    from swarmsync.alerts import ON

    if on not in ON:
        fail(f"--on {on!r}: one of {', '.join(ON)}")
    try:
        made = target().add_alert(name, on, webhook, project=project(project_), pool=pool)
    except (*user_errors(), InvalidError, APIError) as exc:
        fail(str(exc))
    err.print(f"added alert {name} of project {made['project']}: on {on}, to {escape(made['webhook'])}")


@app.command("list")
def list_alerts(project_: Project = None, all_projects: AllProjects = False) -> None:
    """List alerts (of one project with --project), each with its last delivery: ok, or failed and why."""
    rows = target().alerts(project(project_, all_projects))
    table = DataTable()
    for column in ("project", "name", "on", "pool", "owner", "webhook", "last delivery"):
        table.add_column(column, overflow="fold")
    for row in rows:
        delivery = row.get("last_delivery")
        if not delivery:
            last = "-"
        elif delivery["status"] == "ok":
            last = f"ok {str(delivery['at'])[:19]}"
        else:
            last = Text.assemble(("failed", "red"), f" {str(delivery['at'])[:19]}: {delivery.get('reason') or ''}")
        table.add_row(row["project"], row["name"], row["on"], row.get("pool") or "-", row.get("owner") or "-",
                      row["webhook"], last)
    console.print(table)


@app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The alert's name")], project_: Project = None) -> None:
    """Remove an alert (yours; a maintainer of the project or an admin: any of it)."""
    try:
        target().remove_alert(name, project(project_))
    except (*user_errors(), NotFoundError, APIError) as exc:
        fail(str(exc))
    err.print(f"removed alert {name}")
