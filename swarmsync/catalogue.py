"""The field catalogue: `JobSpec` and `HostPolicy` declare each field once, and every way in is
derived from them (the way Prefect derives a pool's job template from one pydantic model).

A field's pydantic declaration (type, default, bounds, `description`) is the catalogue entry.
`Reach`, a small metadata object in the field's `Annotated` type, adds only what a way in
needs and cannot guess: a CLI flag other than `--field-name`, a shorter help or label, the
Compose key that sets it, whether it may differ from a template's with its secrets.

From them come: the CLI options of `submit`, `schedule create`, `template save`
(`swarmsync.cli.catalogue_options`) and `pool create`; the dashboard's submit form and pool
form (`swarmsync.dashboard.forms`); the template block's `options` (`swarmsync.templates`);
the Compose keys (`swarmsync.compose`); the fields free of the secrets check
(`swarmsync.auth.secret_owners.FREE_FIELDS`). The API takes a `JobSpec` whole.

A field a way in leaves out is named in `EXCLUDED`, with the reason; nowhere else.
`tests/unit/test_field_catalogue.py` checks that every field is reachable everywhere, or
excluded here. How to add a field: docs/jobs.md#adding-a-job-field.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

CLI, DASHBOARD, COMPOSE, PYTHON = "cli", "dashboard", "compose", "python"  # the ways in a field may be left out of


@dataclass(frozen=True)
class Reach:
    """What the ways in need beyond a field's pydantic declaration (all optional).

    flags: the CLI flags (default: `--field-name`); help: the CLI help (default: the description);
    label: the form's (default: the help); compose: the Compose service key that sets it; free: a
    JobSpec field that may differ from a saved template's or schedule's when their secrets
    are used (it bounds or labels the run, it does not change what runs or what it sees);
    size: an int of bytes also given as text with a unit ('64m'); argument: the CLI takes it as the
    command's positional words (IMAGE, COMMAND), which each command declares itself."""

    flags: tuple[str, ...] = ()
    help: str | None = None
    label: str | None = None
    compose: str | None = None
    free: bool = False
    size: bool = False
    argument: bool = False


# (model, field) -> {way in: why it is left out}. The one list of what a way in does not reach.
EXCLUDED: dict[tuple[str, str], dict[str, str]] = {
    ("JobSpec", "secrets"): {
        CLI: "--secret NAME=VALUE takes the value and stores it as a Secret block (secret_env); a block name "
             "is never typed",
        DASHBOARD: "the form's secret name and value are stored as a Secret block (secret_env), as with --secret",
        COMPOSE: "Compose's own secrets are files; SwarmSync secrets are given beside the file (--secret)",
    },
    ("JobSpec", "user"): {
        PYTHON: "swarmsync.submit(user=...) names the submitter (kept for compatibility): give the container's user "
                "as swarmsync.submit(JobSpec(image=..., user=...)) (the CLI's --user and Client.submit(user=) are "
                "the container's)",
    },
    ("JobSpec", "entrypoint"): {
        DASHBOARD: "a list of words, rarely changed: set it in a compose file's main service, or by the CLI's "
                   "--spec / the API",
    },
    ("JobSpec", "services"): {
        CLI: "the services of a job come from a compose file (--compose) or a --spec file",
        DASHBOARD: "the services come from the form's compose file",
    },
    ("JobSpec", "depends_on"): {
        CLI: "part of the services: from a compose file (--compose) or a --spec file",
        DASHBOARD: "part of the services: from the form's compose file",
    },
    ("JobSpec", "main_service"): {
        CLI: "with --compose it is --main SERVICE; without services it means nothing",
    },
}


def excluded(model: type[BaseModel], field: str, way: str) -> str | None:
    """Why `way` (CLI, DASHBOARD, COMPOSE, PYTHON: a keyword of `swarmsync.submit`) leaves `model`'s `field`
    out; None when it reaches it. A subclass of a model has its exclusions."""
    reasons = (EXCLUDED.get((cls.__name__, field), {}).get(way) for cls in model.__mro__)
    return next((reason for reason in reasons if reason), None)


def reach(info: FieldInfo) -> Reach:
    """A field's `Reach` (the defaults when it has none)."""
    return next((m for m in info.metadata if isinstance(m, Reach)), Reach())


def fields(model: type[BaseModel], way: str | None = None) -> dict[str, FieldInfo]:
    """`model`'s fields, in declaration order; with `way`, those it reaches (not in EXCLUDED)."""
    return {name: info for name, info in model.model_fields.items() if way is None or not excluded(model, name, way)}


def flags(name: str, info: FieldInfo) -> tuple[str, ...]:
    """The CLI flags of a field: its Reach's, else `--field-name`."""
    return reach(info).flags or ("--" + name.replace("_", "-"),)


def help_text(info: FieldInfo) -> str:
    """The CLI help of a field: its Reach's, else its description."""
    return reach(info).help or info.description or ""


def label(name: str, info: FieldInfo) -> str:
    """The form label of a field: its Reach's label, else its CLI help, else its description, else its name."""
    return reach(info).label or reach(info).help or info.description or name.replace("_", " ")


def compose_keys(model: type[BaseModel]) -> dict[str, str]:
    """Compose service key -> the field it sets, for every field of `model` with one."""
    return {r.compose: name for name, info in model.model_fields.items() if (r := reach(info)).compose}


def free_fields(model: type[BaseModel]) -> set[str]:
    """The fields marked `free` (see Reach)."""
    return {name for name, info in model.model_fields.items() if reach(info).free}


Kind = Literal["flag", "number", "whole", "text", "texts", "numbers", "pairs", "files", "model"]


def kind(info: FieldInfo) -> Kind:
    """How a way in takes a field as text: a yes/no flag, a number, a whole number, one text, a list
    of texts or of numbers, NAME=VALUE pairs, input files, or a nested model (not as text)."""
    if reach(info).size:
        return "text"
    annotation = _without_none(info.annotation)
    origin = get_origin(annotation)
    if annotation is bool:
        return "flag"
    if annotation is float:
        return "number"
    if annotation is int:
        return "whole"
    if origin is dict:
        value = get_args(annotation)[1]
        return "pairs" if value is str else "model"
    if origin is list:
        item = get_args(annotation)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "files" if item.__name__ == "InputFile" else "model"
        return "numbers" if item in (int, float) else "texts"
    return "text"  # str, a Literal, or a union such as int | 'all': the model reads the text


def item_type(info: FieldInfo) -> type:
    """The type of one value of a list field (int for a list of numbers, else str)."""
    annotation = _without_none(info.annotation)
    args = get_args(annotation)
    return args[0] if get_origin(annotation) is list and args and args[0] in (int, float) else str


def _without_none(annotation: Any) -> Any:
    """`X | None` -> X (a union of more stays a union)."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
        return typing.Union[tuple(rest)]  # noqa: UP007 (built from a list)
    return annotation
