"""Options shared by several commands, declared once (Typer's `Annotated` style).

A parameter's name gives the flag unless one is named here: `pool: Pool = None` is `--pool`.
Options that always come together are a group (`option_groups`): `when: ScheduleTimes = None`
under `@schedule_times` is --cron, --every, --rrule, --timezone and --start.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from swarmsync.cli.option_groups import keyword, option_group

# where a job runs
Pool = Annotated[str | None, typer.Option(help="Work pool (default: SWARMSYNC_WORK_POOL)")]
Queue = Annotated[str | None, typer.Option(help="Work queue within the pool")]
Require = Annotated[list[str] | None, typer.Option(
    "--require", "-r",
    help="A host label the job needs (repeatable, e.g. gpu, region=eu): only workers having all of them "
    "run it (its queue is host:gpu+region=eu; see docs/deployment.md)")]

# what a job runs (its JobSpec fields are options of their own: cli/catalogue_options.py)
Command = Annotated[list[str] | None, typer.Argument(help="Command and args (exec form)")]
Shell = Annotated[str | None, typer.Option("--shell", "-c", help="A shell string run with /bin/sh -c")]
Template = Annotated[
    str | None, typer.Option("--template", "-T", help="A saved job template (options override it)")
]
Secret = Annotated[
    list[str] | None,
    typer.Option("--secret", "-s", help="NAME=VALUE, kept in a Secret block: masked, never archived"),
]

# schedules (of jobs and of pipelines)
ScheduleName = Annotated[str, typer.Argument(help="Schedule name: lowercase letters, digits, dashes")]

# when a schedule runs it
Cron = Annotated[str | None, typer.Option(help="Cron expression, e.g. '30 2 * * *'")]
Every = Annotated[str | None, typer.Option(help="Interval, e.g. 15m, 1h, 1d")]
RRule = Annotated[str | None, typer.Option(help="RRule, e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'")]
TimeZone = Annotated[
    str | None, typer.Option("--timezone", "--tz", help="IANA time zone, e.g. Europe/Berlin")
]
Start = Annotated[str | None, typer.Option(help="Anchor of an interval (ISO time)")]
ScheduleTimes = dict[str, Any] | None  # the parameter `schedule_times` fills: cron, every, rrule, timezone, start
schedule_times = option_group("when", [keyword("cron", Cron), keyword("every", Every), keyword("rrule", RRule),
                                       keyword("timezone", TimeZone), keyword("start", Start)], dict)
"""Puts the five options where the command has `when: ScheduleTimes = None`, and hands it `when`: all five
by name, None where not given (the keyword arguments of the Hibernator's `create` and `add`)."""

# accounts
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")]

# which project (swarmsync.auth.projects); the default is chosen by `target.project`
Project = Annotated[str | None, typer.Option(
    "--project", "-P",
    help="The project (default: SWARMSYNC_PROJECT, else the one 'swarmsync project use' stored; else new "
    "jobs, schedules and templates go to the default project and listings show all of yours)")]
AllProjects = Annotated[bool, typer.Option(
    "--all-projects", help="Every project of yours, whatever SWARMSYNC_PROJECT or 'project use' chose")]
