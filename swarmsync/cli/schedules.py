"""Schedule and template commands: `swarmsync schedule ...` (recurring jobs) and
`swarmsync template ...` (saved jobs). They call `swarmsync.deployments.schedules` / `swarmsync.templates`
on the server host, or the SwarmSync API's /schedules and /templates when SWARMSYNC_URL is
set or `swarmsync login` stored one (see `target.hibernator`)."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from swarmsync.cli.jobs import _fail, _parse_env
from swarmsync.cli.target import hibernator
from swarmsync.spec import JobSpecError
from swarmsync.timing import TimingError

schedule_app = typer.Typer(no_args_is_help=True, help="Recurring jobs: cron, interval or RRule schedules.")
template_app = typer.Typer(no_args_is_help=True, help="Saved job templates (Prefect blocks).")
console = Console()
err = Console(stderr=True)


def _job_options(env: list[str], memory: str | None, cpu: float | None, timeout: float | None,
                 tag: list[str], retries: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {k: v for k, v in {
        "memory": memory, "cpu": cpu, "timeout": timeout, "retries": retries}.items() if v is not None}
    if env:
        options["env"] = _parse_env(env, "--env")
    if tag:
        options["tags"] = list(tag)
    return options


def _command(words: list[str] | None, shell: str | None) -> list[str] | str | None:
    words = [w for i, w in enumerate(words or []) if not (i == 0 and w == "--")]
    if words and shell:
        raise _fail("give a command or --shell, not both")
    return shell or (words or None)


USER_ERRORS = (ValueError, ValidationError, JobSpecError, TimingError, LookupError)


@schedule_app.command("create")
def create(
    name: str = typer.Argument(..., help="Schedule name: lowercase letters, digits, dashes"),
    image: str = typer.Argument(None, help="Image (not with --template)"),
    command: list[str] = typer.Argument(None, help="Command and args"),
    cron: str = typer.Option(None, help="Cron expression, e.g. '30 2 * * *'"),
    every: str = typer.Option(None, help="Interval, e.g. 15m, 1h, 1d"),
    rrule: str = typer.Option(None, help="RRule, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"),
    timezone: str = typer.Option(None, "--timezone", "--tz", help="IANA time zone, e.g. Europe/Berlin"),
    start: str = typer.Option(None, help="Anchor of an interval (ISO time)"),
    overlap: str = typer.Option("allow", help="allow, skip (cancel a run that would overlap) or queue"),
    template: str = typer.Option(None, "--template", "-T", help="A saved job template"),
    shell: str = typer.Option(None, "--shell", "-c", help="A shell string run with /bin/sh -c"),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME=VALUE (repeatable)"),
    secret: list[str] = typer.Option([], "--secret", "-s", help="NAME=VALUE, kept in a Secret block"),
    memory: str = typer.Option(None, help="Memory limit, e.g. 256m"),
    cpu: float = typer.Option(None, help="CPU cores"),
    timeout: float = typer.Option(None, help="Seconds before a run is stopped"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag (repeatable)"),
    retries: int = typer.Option(None, help="Retries of a failed run"),
    pool: str = typer.Option(None, help="Work pool (default: SWARMSYNC_WORK_POOL)"),
    queue: str = typer.Option(None, help="Work queue within the pool"),
    paused: bool = typer.Option(False, "--paused", help="Create it paused"),
) -> None:
    """Create a recurring job: (--cron | --every | --rrule) [--timezone TZ] (--template T | IMAGE [COMMAND]...).

    Options may come anywhere; put `--` before a command that has options of its own:
    `swarmsync schedule create nightly --cron '30 2 * * *' busybox -- sh -c 'date'`.
    """
    if template and image:
        command, image = [image, *(command or [])], None
    try:
        job = hibernator().create(
            name, image, _command(command, shell), cron=cron, every=every, rrule=rrule, timezone=timezone,
            start=start, template=template, overlap=overlap, pool=pool, queue=queue,
            secret_env=_parse_env(secret, "--secret") or None, paused=paused,
            **_job_options(env, memory, cpu, timeout, tag, retries),
        )
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    _print_schedule(job)


@schedule_app.command("add")
def add(
    name: str = typer.Argument(..., help="An existing schedule"),
    cron: str = typer.Option(None, help="Cron expression"),
    every: str = typer.Option(None, help="Interval, e.g. 15m"),
    rrule: str = typer.Option(None, help="RRule"),
    timezone: str = typer.Option(None, "--timezone", "--tz", help="IANA time zone"),
    start: str = typer.Option(None, help="Anchor of an interval (ISO time)"),
    shell: str = typer.Option(None, "--shell", "-c", help="This schedule's own command (shell string)"),
    env: list[str] = typer.Option([], "--env", "-e", help="This schedule's own NAME=VALUE (repeatable)"),
) -> None:
    """Add another schedule to NAME, optionally with its own command and env (its own parameters)."""
    overrides: dict[str, Any] = {"command": shell} if shell else {}
    if env:
        overrides["env"] = _parse_env(env, "--env")
    try:
        job = hibernator().add(name, cron=cron, every=every, rrule=rrule, timezone=timezone, start=start, **overrides)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    _print_schedule(job)


def _print_schedule(job) -> None:
    console.print(f"schedule [bold]{job.name}[/bold] ({job.deployment}, pool {job.pool}, overlap {job.overlap})"
                  + (" [yellow]paused[/yellow]" if job.paused else ""))
    for entry in job.schedules:
        own = " (own job parameters)" if entry.job else ""
        console.print(f"  {entry.description}{'' if entry.active else ' [inactive]'}{own}")
    for when in job.next_runs:
        console.print(f"  next: {when.astimezone():%Y-%m-%d %H:%M:%S %Z}")


@schedule_app.command("list")
def list_(all_next: bool = typer.Option(False, "--next", help="Show the next three run times")) -> None:
    """List schedules with their next run time."""
    table = Table("name", "when", "job", "overlap", "state", "next run")
    for job in hibernator().list_schedules():
        command = job.job.get("command")
        command = command if isinstance(command, str) else " ".join(command or [])
        runs = job.next_runs if all_next else job.next_runs[:1]
        table.add_row(
            job.name, "\n".join(e.description for e in job.schedules), f"{job.job.get('image', '?')} {command}",
            job.overlap, "paused" if job.paused else "active",
            "\n".join(f"{t.astimezone():%Y-%m-%d %H:%M:%S %Z}" for t in runs) or "-",
        )
    console.print(table)


def _simple(action: str, name: str) -> None:
    try:
        getattr(hibernator(), action)(name)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None


@schedule_app.command("pause")
def pause(name: str) -> None:
    """Stop creating runs (runs already scheduled are removed) until resumed."""
    _simple("pause", name)
    err.print(f"paused {name}")


@schedule_app.command("resume")
def resume(name: str) -> None:
    """Start creating runs again."""
    _simple("resume", name)
    err.print(f"resumed {name}")


@schedule_app.command("delete")
def delete(name: str) -> None:
    """Delete the schedule and its runs that have not started."""
    _simple("delete", name)
    err.print(f"deleted {name}")


@schedule_app.command("run")
def run(name: str) -> None:
    """Run the schedule's job now; prints the job id."""
    try:
        job = hibernator().run(name)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    typer.echo(job.id)


@template_app.command("save")
def template_save(
    name: str = typer.Argument(..., help="Template name: lowercase letters, digits, dashes"),
    image: str = typer.Argument(..., help="Image"),
    command: list[str] = typer.Argument(None, help="Command and args"),
    shell: str = typer.Option(None, "--shell", "-c", help="A shell string run with /bin/sh -c"),
    env: list[str] = typer.Option([], "--env", "-e", help="NAME=VALUE (repeatable)"),
    secret: list[str] = typer.Option([], "--secret", "-s", help="NAME=VALUE, kept in a Secret block"),
    memory: str = typer.Option(None, help="Memory limit, e.g. 256m"),
    cpu: float = typer.Option(None, help="CPU cores"),
    timeout: float = typer.Option(None, help="Seconds before the job is stopped"),
    tag: list[str] = typer.Option([], "--tag", "-t", help="Tag (repeatable)"),
    retries: int = typer.Option(None, help="Retries of a failed job"),
) -> None:
    """Save (or replace) a job template, shown in the Prefect UI as a block."""
    try:
        hibernator().save_template(
            name, image, _command(command, shell), secret_env=_parse_env(secret, "--secret") or None,
            **_job_options(env, memory, cpu, timeout, tag, retries),
        )
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    err.print(f"saved template {name}; use it with: swarmsync submit --template {name}")


@template_app.command("list")
def template_list() -> None:
    """List saved job templates."""
    table = Table("name", "image", "command", "env", "secrets")
    for name, fields in sorted(hibernator().list_templates().items()):
        command = fields.get("command")
        command = command if isinstance(command, str) else " ".join(command or [])
        table.add_row(name, fields.get("image", "?"), command, ", ".join(fields.get("env") or {}),
                      ", ".join(fields.get("secrets") or {}))
    console.print(table)


@template_app.command("delete")
def template_delete(name: str) -> None:
    """Delete a template and the Secret blocks it made."""
    try:
        hibernator().delete_template(name)
    except USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    err.print(f"deleted template {name}")
