"""`swarmsync project list|create|delete|members|add-member|remove-member|use`.

Projects group jobs, schedules and templates; their members have a role there (viewer,
operator, maintainer; swarmsync.auth.projects). Through the API when SWARMSYNC_URL is set (or
after `swarmsync login`); otherwise straight into SwarmSync's database on the server host, as
the local administrator (`target.project_admin`). `use NAME` makes NAME the project of every
later command that gives no `--project` (kept beside the stored login).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.target import project, project_admin
from swarmsync.client import use_project

app = typer.Typer(no_args_is_help=True, help="Projects: who may read and run which jobs, schedules and templates.")

Role = Annotated[str, typer.Option("--role", "-r", help="viewer (reads), operator (and runs jobs, changes its "
                                   "own), maintainer (and changes everyone's, manages members)")]


def _member(row: dict[str, Any]) -> None:
    err.print(f"{row['username']} is {row['role']} in project {row['project']}")


@app.command("list")
def list_projects() -> None:
    """The projects you are a member of (admins: all), with your role there; * marks the one in use."""
    current = project()
    table = DataTable("", "project", "your role", "members", "description")
    for row in project_admin().list_projects():
        table.add_row("*" if row["name"] == current else "", row["name"], row.get("role") or "-",
                      str(row.get("members", "")), row.get("description") or "")
    console.print(table)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Lowercase letters and digits in words joined by dashes, e.g. data-team")],
    description: Annotated[str, typer.Option(help="What the project is for")] = "",
) -> None:
    """Create a project (admins); add its members with 'swarmsync project add-member'."""
    project_admin().create(name, description)
    err.print(f"created project {name}; add members with: swarmsync project add-member {name} USER --role operator")


@app.command("delete")
def delete(name: str) -> None:
    """Delete a project and its memberships (admins); its jobs, schedules and templates stay (for admins)."""
    project_admin().delete(name)
    err.print(f"deleted project {name}")


@app.command("members")
def members(name: str) -> None:
    """A project's members and their roles."""
    table = DataTable("user", "role")
    for row in project_admin().members(name):
        table.add_row(row["username"], row["role"])
    console.print(table)


@app.command("add-member")
def add_member(name: str, username: str, role: Role = "operator") -> None:
    """Add a user to a project with a role, or change their role there (its maintainers, admins)."""
    _member(project_admin().set_member(name, username, role))


@app.command("remove-member")
def remove_member(name: str, username: str) -> None:
    """Remove a user from a project (its maintainers, admins); what they made there stays."""
    project_admin().remove_member(name, username)
    err.print(f"removed {username} from project {name}")


@app.command("use")
def use(
    name: Annotated[str | None, typer.Argument(help="The project later commands work in")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the project chosen before")] = False,
) -> None:
    """Work in project NAME from now on: commands without --project submit there and list only its jobs,
    schedules and templates (SWARMSYNC_PROJECT still wins). Stored beside the login's token."""
    if clear == (name is not None):
        fail("give a project NAME, or --clear")
    if clear:
        use_project(None)
        err.print("no project in use: new jobs go to the default project, listings show all of yours")
        return
    if not project_admin().exists(name):
        fail(f"no project named {name!r} that you are a member of; see 'swarmsync project list'")
    path = use_project(name)
    err.print(f"working in project {name} (stored in {path}); 'swarmsync project use --clear' forgets it")


@app.command("budget")
def budget(
    name: str,
    cpu_hours: Annotated[float | None, typer.Option("--cpu-hours", min=0,
                                                    help="CPU-hours a month for the project's jobs (admins)")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="No cap any more (admins)")] = False,
) -> None:
    """Show a project's monthly CPU-hours budget and its use this month; set it with --cpu-hours (admins).
    Past it, the project's new jobs are refused until the month ends (UTC)."""
    if cpu_hours is not None and remove:
        fail("give --cpu-hours N or --remove, not both")
    if cpu_hours is not None or remove:  # refusals: the CLI's one error table (cli/main.py OneLineErrors)
        row = project_admin().set_budget(name, None if remove else cpu_hours)
    else:
        row = project_admin().budget(name)
    cap = "none" if row["cpu_hours"] is None else f"{row['cpu_hours']:g} CPU-hours"
    console.print(f"project {name}: budget {cap} a month; used {row['used_cpu_hours']:.2f} CPU-hours this month "
                  f"(resets {str(row['resets'])[:10]})")
