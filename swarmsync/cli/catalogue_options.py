"""CLI options derived from the field catalogue (swarmsync/catalogue.py): one option per field of a
model, so a field added to `JobSpec` or `HostPolicy` is an option of `submit`, `schedule create`,
`template save` (or `pool create`) with no code here or in the command.

    @app.command(cls=OptionsOnFirstUse)
    @catalogue_options("swarmsync.spec:JobSpec")
    def submit(image: ..., fields: CatalogueFields = None, pool: Pool = None) -> None:
        ...  # `fields`: the JobSpec fields given, as keyword arguments

The decorator (an `option_groups.option_group`) puts the options where the command has its
`fields` parameter (so `--help` lists them in that place) and hands the command the values given,
converted to what the model takes (NAME=VALUE pairs as a dict, --input files read and checksummed,
sizes in bytes).

A model named as "module:Class" has its options made only when the command's own parameters are read
(`cls=OptionsOnFirstUse`), and from the option table (swarmsync/cli/option_table.py), not the model: the
commands start without the JobSpec models and pydantic (docs/benchmarks.md, CLI start). A model class given
itself makes them at once, from the class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from swarmsync.cli.console import fail
from swarmsync.cli.job_arguments import parse_env
from swarmsync.cli.option_groups import OptionsOnFirstUse, keyword, option_group
from swarmsync.cli.option_table import ITEM_TYPES, OptionRow, rows, rows_of

if TYPE_CHECKING:
    from pydantic import BaseModel

    from swarmsync.spec import InputFile

__all__ = ["SLOT", "CatalogueFields", "OptionsOnFirstUse", "catalogue_options", "input_files"]

CatalogueFields = dict[str, Any] | None  # the annotation of the parameter the options replace
SLOT = "fields"
F = TypeVar("F", bound=Callable[..., Any])

_TYPES: dict[str, Any] = {"flag": bool | None, "number": float | None, "whole": int | None, "text": str | None,
                          "texts": list[str] | None, "pairs": list[str] | None, "files": list[str] | None}


def _parameter(row: OptionRow) -> inspect.Parameter:
    annotation = list[ITEM_TYPES[row.item]] | None if row.kind == "numbers" else _TYPES.get(row.kind)
    if annotation is None:
        raise TypeError(f"{row.name}: a {row.kind} field has no CLI option; name it in catalogue.EXCLUDED with the "
                        "reason")
    # with no flags of its own, Typer names the option after the field (a flag: --name/--no-name)
    option = typer.Option(*row.flags, help=row.help, show_default=False)
    return keyword(row.name, Annotated[annotation, option])


def _value(row: OptionRow, value: Any) -> Any:
    """A given option as the model takes it."""
    if row.kind == "pairs":
        return parse_env(value, row.flag)
    if row.kind == "files":
        return input_files(value)
    if row.size:
        from swarmsync.policy import parse_size

        try:
            return parse_size(value)
        except ValueError as exc:
            fail(f"{row.flag}: {exc}")
    return list(value) if isinstance(value, tuple) else value


def input_files(items: list[str]) -> list[InputFile]:
    """--input LOCAL:/container/path[:SHA256], read now."""
    from pydantic import ValidationError

    from swarmsync.spec import InputFile, JobSpecError

    inputs = []
    for item in items:
        local, _, rest = item.partition(":")
        target, _, digest = rest.partition(":")
        try:
            inputs.append(InputFile.from_bytes(target, Path(local).read_bytes(), digest or None))
        except (OSError, ValidationError, JobSpecError) as exc:
            fail(f"--input {item}: {exc}")
    return inputs


def catalogue_options(model: type[BaseModel] | str) -> Callable[[F], F]:
    """Replace the command's `fields` parameter by an option per field of `model` (see the module);
    the command gets `fields`: {field: value} of the options given (None and empty lists left out).
    `model` as "module:Class": made on first use (register the command with `cls=OptionsOnFirstUse`), from
    the option table (swarmsync/cli/option_table.py) when it lists the model."""
    options: dict[str, OptionRow] = {}

    def parameters() -> list[inspect.Parameter]:
        options.update((row.name, row) for row in (rows(model) if isinstance(model, str) else rows_of(model)))
        return [_parameter(row) for row in options.values()]

    def given(values: dict[str, Any]) -> dict[str, Any]:
        return {name: _value(options[name], value) for name, value in values.items() if value not in (None, [], ())}

    return option_group(SLOT, parameters if isinstance(model, str) else parameters(), given)
