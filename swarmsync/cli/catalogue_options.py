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

The model named as "module:Class" is imported, and its options made, only when the command's own parameters
are read (`cls=OptionsOnFirstUse`): `swarmsync --help` and the other commands start without the JobSpec models
and pydantic (docs/benchmarks.md, CLI start). A model class given itself makes them at once.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from swarmsync.cli.console import fail
from swarmsync.cli.job_arguments import parse_env
from swarmsync.cli.option_groups import OptionsOnFirstUse, keyword, option_group

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

    from swarmsync.spec import InputFile

__all__ = ["SLOT", "CatalogueFields", "OptionsOnFirstUse", "catalogue_options", "input_files", "option_fields"]

CatalogueFields = dict[str, Any] | None  # the annotation of the parameter the options replace
SLOT = "fields"
F = TypeVar("F", bound=Callable[..., Any])

_TYPES: dict[str, Any] = {"flag": bool | None, "number": float | None, "whole": int | None, "text": str | None,
                          "texts": list[str] | None, "pairs": list[str] | None, "files": list[str] | None}


def option_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields of `model` that are CLI options: reached by the CLI and not positional words."""
    from swarmsync import catalogue

    return {name: info for name, info in catalogue.fields(model, catalogue.CLI).items()
            if not catalogue.reach(info).argument}


def _parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    from swarmsync import catalogue

    kind = catalogue.kind(info)
    annotation = list[catalogue.item_type(info)] | None if kind == "numbers" else _TYPES.get(kind)
    if annotation is None:
        raise TypeError(f"{name}: a {kind} field has no CLI option; name it in catalogue.EXCLUDED with the reason")
    # with no flags of its own, Typer names the option after the field (a flag: --name/--no-name)
    option = typer.Option(*catalogue.reach(info).flags, help=catalogue.help_text(info), show_default=False)
    return keyword(name, Annotated[annotation, option])


def _value(flag: str, info: FieldInfo, value: Any) -> Any:
    """A given option as the model takes it."""
    from swarmsync import catalogue
    from swarmsync.policy import parse_size

    kind = catalogue.kind(info)
    if kind == "pairs":
        return parse_env(value, flag)
    if kind == "files":
        return input_files(value)
    if catalogue.reach(info).size:
        try:
            return parse_size(value)
        except ValueError as exc:
            fail(f"{flag}: {exc}")
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


def _model(model: type[BaseModel] | str) -> type[BaseModel]:
    if not isinstance(model, str):
        return model
    module, _, name = model.partition(":")
    return getattr(importlib.import_module(module), name)


def catalogue_options(model: type[BaseModel] | str) -> Callable[[F], F]:
    """Replace the command's `fields` parameter by an option per field of `model` (see the module);
    the command gets `fields`: {field: value} of the options given (None and empty lists left out).
    `model` as "module:Class": made on first use (register the command with `cls=OptionsOnFirstUse`)."""
    options: dict[str, FieldInfo] = {}

    def parameters() -> list[inspect.Parameter]:
        options.update(option_fields(_model(model)))
        return [_parameter(name, info) for name, info in options.items()]

    def given(values: dict[str, Any]) -> dict[str, Any]:
        from swarmsync import catalogue

        return {name: _value(catalogue.flags(name, options[name])[0], options[name], value)
                for name, value in values.items() if value not in (None, [], ())}

    return option_group(SLOT, parameters if isinstance(model, str) else parameters(), given)
