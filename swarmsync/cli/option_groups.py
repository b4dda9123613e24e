"""Option groups: options declared once that a command takes as one parameter, its slot.

    @app.command()
    @option_group("when", [keyword("cron", Cron), keyword("every", Every)], dict)
    def create(name: str, when: ScheduleTimes = None) -> None:
        ...  # when: {"cron": ..., "every": ...}

The group's options take the slot's place in the command's signature (so `--help` lists them there);
the command gets `collect({option: value given})` in the slot. `options.schedule_times` is the group
of a schedule's times; `catalogue_options.catalogue_options` the group of a model's fields.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def keyword(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """An option of a group: Typer reads its flag and help from `annotation` (an `Annotated` option)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def option_group(slot: str, options: Sequence[inspect.Parameter],
                 collect: Callable[[dict[str, Any]], Any]) -> Callable[[F], F]:
    """Replace the command's parameter `slot` by `options`; the command gets `collect(values)` there,
    `values` being {option: value} of all of them, given or not."""
    names = [option.name for option in options]

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != slot]
        if clash := {p.name for p in own} & set(names):
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are also options of its {slot!r}")
        where = list(signature.parameters).index(slot)
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        parameters[where:where] = options

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            values = {name: given.pop(name) for name in names}
            return command(**given, **{slot: collect(values)})

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        del run.__wrapped__  # Typer reads the signature above, not the command's own
        return run  # type: ignore[return-value]

    return decorate
