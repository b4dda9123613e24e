"""`swarmsync schedule ...`: recurring jobs. They call `swarmsync.deployments.schedules` on the
server host, or the SwarmSync API's /schedules when SWARMSYNC_URL is set or `swarmsync login`
stored one (see `target.hibernator`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from swarmsync.cli.catalogue_options import CatalogueFields, OptionsOnFirstUse, catalogue_options
from swarmsync.cli.console import DataTable, console, err
from swarmsync.cli.job_arguments import command_from, input_errors, parse_env
from swarmsync.cli.options import (
    AllProjects,
    Command,
    Pool,
    Project,
    Queue,
    ScheduleName,
    ScheduleTimes,
    Secret,
    Shell,
    Template,
    schedule_times,
)
from swarmsync.cli.pipeline_schedules import pipeline_schedules
from swarmsync.cli.target import hibernator, project

if TYPE_CHECKING:
    from swarmsync.schedule_rows import RecurringJob

app = typer.Typer(no_args_is_help=True, help="Recurring jobs: cron, interval or RRule schedules.")


@app.command("create", cls=OptionsOnFirstUse)
@catalogue_options("swarmsync.spec:JobSpec")
@schedule_times
def create(
    name: ScheduleName,
    image: Annotated[str | None, typer.Argument(help="Image (not with --template)")] = None,
    command: Command = None,
    when: ScheduleTimes = None,
    overlap: Annotated[str, typer.Option(help="allow, skip (cancel a run that would overlap) or queue")] = "allow",
    template: Template = None,
    shell: Shell = None,
    secret: Secret = None,
    fields: CatalogueFields = None,
    pool: Pool = None,
    queue: Queue = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused")] = False,
    project_: Project = None,
) -> None:
    """Create a recurring job: (--cron | --every | --rrule) [--timezone TZ] (--template T | IMAGE [COMMAND]...).

    Options may come anywhere; put `--` before a command that has options of its own:
    `swarmsync schedule create nightly --cron '30 2 * * *' busybox -- sh -c 'date'`.
    """
    if template and image:
        command, image = [image, *(command or [])], None
    with input_errors():
        job = hibernator().create(
            name, image, command_from(command, shell), **(when or {}), template=template, overlap=overlap, pool=pool,
            queue=queue, secret_env=parse_env(secret, "--secret") or None, paused=paused, project=project(project_),
            **(fields or {}),
        )
    _print_schedule(job)


@app.command("add")
@schedule_times
def add(
    name: Annotated[str, typer.Argument(help="An existing schedule")],
    when: ScheduleTimes = None,
    shell: Annotated[
        str | None, typer.Option("--shell", "-c", help="This schedule's own command (shell string)")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="This schedule's own NAME=VALUE (repeatable)")
    ] = None,
    project_: Project = None,
) -> None:
    """Add another schedule to NAME, optionally with its own command and env (its own parameters)."""
    overrides: dict[str, Any] = {"command": shell} if shell else {}
    if env:
        overrides["env"] = parse_env(env, "--env")
    with input_errors():
        job = hibernator().add(name, project(project_), **(when or {}), **overrides)
    _print_schedule(job)


def _print_schedule(job: RecurringJob) -> None:
    console.print(f"schedule [bold]{escape(job.name)}[/bold] of project {escape(job.project)} "
                  f"({escape(f'{job.deployment}, pool {job.pool}, overlap {job.overlap}')})"
                  + (" [yellow]paused[/yellow]" if job.paused else ""))
    for entry in job.schedules:
        own = " (own job parameters)" if entry.job else ""
        console.print(f"  {entry.description}{'' if entry.active else ' [inactive]'}{own}", markup=False)
    for when in job.next_runs:
        console.print(f"  next: {when.astimezone():%Y-%m-%d %H:%M:%S %Z}")


@app.command("list")
def list_(all_next: Annotated[bool, typer.Option("--next", help="Show the next three run times")] = False,
          project_: Project = None, all_projects: AllProjects = False) -> None:
    """List schedules, of jobs and of pipelines, with their next run time (of one project with --project)."""
    found = hibernator().list_schedules(project(project_, all_projects))
    pipelines = pipeline_schedules().list(project(project_, all_projects))
    table = DataTable()
    widest = max([len(job.name) for job in found] + [len(p["name"]) for p in pipelines], default=4)
    table.add_column("name", no_wrap=True, min_width=widest)  # whole
    for column in ("project", "owner", "when", "job", "overlap", "state", "next run"):
        table.add_column(column)

    def times(runs: list[Any]) -> str:
        chosen = runs if all_next else runs[:1]
        return "\n".join(f"{_when(t).astimezone():%Y-%m-%d %H:%M:%S %Z}" for t in chosen) or "-"

    for job in found:
        command = job.job.get("command")
        command = command if isinstance(command, str) else " ".join(command or [])
        table.add_row(
            job.name, job.project, job.owner or "-", "\n".join(e.description for e in job.schedules),
            f"{job.job.get('image', '?')} {command}",
            job.overlap, "paused" if job.paused else "active", times(job.next_runs),
        )
    for item in pipelines:  # a pipeline's runs never overlap-limit: each is its own parent run
        table.add_row(
            item["name"], item["project"], item.get("owner") or "-", "\n".join(item["schedules"]),
            f"pipeline {item['pipeline'].get('name', '?')}: {', '.join(item['steps'])}",
            "allow", "paused" if item["paused"] else "active", times(item["next_runs"]),
        )
    console.print(table)


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _change(action: str, name: str, project_: str | None, done: str) -> None:
    """`hibernator().ACTION(name, project)`, then `DONE NAME` on stderr (or the refusal, exit 1). No job
    schedule of that name: the pipeline schedule of that name, if there is one (the Hibernator treats both
    alike); neither: the job schedule's refusal."""
    scope = project(project_)
    with input_errors():
        try:
            getattr(hibernator(), action)(name, scope)
        except LookupError as missing:
            try:
                pipeline_schedules().change(name, action, scope)
            except LookupError:
                raise missing from None
            done = f"{done} pipeline schedule"
    err.print(f"{done} {name}")


@app.command("pause")
def pause(name: str, project_: Project = None) -> None:
    """Stop creating runs (runs already scheduled are removed) until resumed."""
    _change("pause", name, project_, "paused")


@app.command("resume")
def resume(name: str, project_: Project = None) -> None:
    """Start creating runs again."""
    _change("resume", name, project_, "resumed")


@app.command("delete")
def delete(name: str, project_: Project = None) -> None:
    """Delete the schedule and its runs that have not started."""
    _change("delete", name, project_, "deleted")


@app.command("run")
def run(name: str, project_: Project = None) -> None:
    """Run the schedule's job now; prints the job id."""
    with input_errors():
        job = hibernator().run(name, project(project_))
    typer.echo(job.id)
