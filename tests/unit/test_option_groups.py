"""Options declared once: an option group (swarmsync/cli/option_groups.py) stands in a command's signature
where its slot parameter was and reaches the command as one value; `input_errors` is the one way a command
reports wrong input (exit code 2)."""

from __future__ import annotations

import inspect
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from swarmsync.cli import schedules
from swarmsync.cli.job_arguments import input_errors
from swarmsync.cli.option_groups import OptionsOnFirstUse, keyword, option_group
from swarmsync.cli.options import Pool, ScheduleTimes, schedule_times
from swarmsync.cli.target import WHEN

TIMES = ["cron", "every", "rrule", "timezone", "start"]  # what the Hibernator takes as `when`


def test_the_schedule_times_stand_where_the_slot_was_and_reach_the_command_by_name():
    got = {}
    cli = typer.Typer()

    @cli.command()
    @schedule_times
    def make(name: str, when: ScheduleTimes = None, pool: Pool = None) -> None:
        got.update(when=when, pool=pool)

    assert list(inspect.signature(make).parameters) == ["name", *TIMES, "pool"]
    result = CliRunner().invoke(cli, ["nightly", "--tz", "Europe/Berlin", "--every", "1h", "--pool", "p"])
    assert result.exit_code == 0, result.output
    assert got == {"when": {"cron": None, "every": "1h", "rrule": None, "timezone": "Europe/Berlin", "start": None},
                   "pool": "p"}


def test_schedule_create_and_add_list_the_times_in_their_place():
    create = list(inspect.signature(schedules.create).parameters)
    assert create[:9] == ["name", "image", "command", *TIMES, "overlap"] and "when" not in create
    assert list(inspect.signature(schedules.add).parameters)[:6] == ["name", *TIMES]
    assert TIMES == list(WHEN)


def test_a_group_refuses_a_command_that_has_a_parameter_of_its_own_of_the_same_name():
    with pytest.raises(TypeError, match=r"\['cron'\]"):
        schedule_times(lambda cron=None, when=None: None)


def test_input_errors_end_the_command_with_exit_code_2_and_let_its_own_exits_and_bugs_through():
    cli = typer.Typer()

    @cli.command()
    def go(what: str) -> None:
        with input_errors():
            if what == "missing":
                raise LookupError("no schedule named 'x'")
            if what == "exit":
                raise typer.Exit(5)
            raise RuntimeError("a bug")

    missing = CliRunner().invoke(cli, ["missing"])
    assert (missing.exit_code, missing.output.strip()) == (2, "error: no schedule named 'x'")
    assert CliRunner().invoke(cli, ["exit"]).exit_code == 5
    assert isinstance(CliRunner().invoke(cli, ["bug"]).exception, RuntimeError)


def test_a_group_made_on_first_use_is_made_when_its_command_is_read_not_when_the_tree_is_built():
    """`swarmsync --help` builds every command; a command's costly options (the JobSpec catalogue) are made only
    when that command's own parameters are read (its help, running it): `cls=OptionsOnFirstUse`."""
    made, got = [], {}

    def options() -> list[inspect.Parameter]:
        made.append(1)
        return [keyword("memory", Annotated[str | None, typer.Option(help="Its memory")])]

    cli = typer.Typer(add_completion=False)

    @cli.command(cls=OptionsOnFirstUse)
    @option_group("fields", options, dict)
    def run(image: str, fields: dict | None = None, pool: Pool = None) -> None:
        got.update(image=image, fields=fields, pool=pool)

    @cli.command()
    def other() -> None:
        """Another command."""

    assert CliRunner().invoke(cli, ["other"]).exit_code == 0 and not made  # the whole tree was built
    shown = CliRunner().invoke(cli, ["run", "--help"], env={"COLUMNS": "200"})
    assert "--memory" in shown.output and "Its memory" in shown.output and made == [1]
    result = CliRunner().invoke(cli, ["run", "busybox", "--memory", "64m", "--pool", "p"])
    assert result.exit_code == 0, result.output
    assert got == {"image": "busybox", "fields": {"memory": "64m"}, "pool": "p"} and made == [1]


def test_a_group_made_on_first_use_refuses_to_run_without_its_command_class():
    cli = typer.Typer(add_completion=False)

    @cli.command()
    @option_group("fields", lambda: [keyword("memory", Annotated[str | None, typer.Option()])], dict)
    def run(image: str, fields: dict | None = None) -> None:
        pass

    result = CliRunner().invoke(cli, ["busybox"])
    assert isinstance(result.exception, TypeError) and "cls=OptionsOnFirstUse" in str(result.exception)
