"""Option groups: options declared once that a command takes as one parameter, its slot.

    @app.command()
    @option_group("when", [keyword("cron", Cron), keyword("every", Every)], dict)
    def create(name: str, when: ScheduleTimes = None) -> None:
        ...  # when: {"cron": ..., "every": ...}

The group's options take the slot's place in the command's signature (so `--help` lists them there);
the command gets `collect({option: value given})` in the slot. `options.schedule_times` is the group
of a schedule's times; `catalogue_options.catalogue_options` the group of a model's fields.

Options that cost something to make (the JobSpec catalogue loads pydantic models) can be given as a function
that makes them: the command is then registered with `cls=OptionsOnFirstUse`, and its options are made only when
Click first reads the command's parameters (its own `--help`, or running it), not when Typer builds the whole
command tree for `swarmsync --help` or another command (docs/benchmarks.md, CLI start).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from typer.core import TyperCommand

F = TypeVar("F", bound=Callable[..., Any])


def keyword(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """An option of a group: Typer reads its flag and help from `annotation` (an `Annotated` option)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def option_group(slot: str, options: Sequence[inspect.Parameter] | Callable[[], Sequence[inspect.Parameter]],
                 collect: Callable[[dict[str, Any]], Any]) -> Callable[[F], F]:
    """Replace the command's parameter `slot` by `options`; the command gets `collect(values)` there,
    `values` being {option: value} of all of them, given or not. `options` as a function: made on first use
    (register the command with `cls=OptionsOnFirstUse`; until then its signature lacks them)."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        where = list(signature.parameters).index(slot)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
               if p.name != slot]
        names: list[str] = []

        def show(parameters: list[inspect.Parameter]) -> None:
            run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
            run.__annotations__ = {p.name: p.annotation for p in parameters}

        def load_options() -> None:
            if names:
                return
            made = list(options() if callable(options) else options)
            if clash := {p.name for p in own} & {option.name for option in made}:
                raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are also options of its {slot!r}")
            names.extend(option.name for option in made)
            show([*own[:where], *made, *own[where:]])

        @functools.wraps(command)
        def run(**given: Any) -> Any:
            if not names:
                raise TypeError(f"{command.__name__}: its {slot!r} options were never made: register it with "
                                "cls=OptionsOnFirstUse")
            values = {name: given.pop(name) for name in names}
            return command(**given, **{slot: collect(values)})

        del run.__wrapped__  # Typer reads the signature set here, not the command's own
        if callable(options):
            show(own)
            run.load_options = load_options  # type: ignore[attr-defined]
        else:
            load_options()
        return run  # type: ignore[return-value]

    return decorate


class OptionsOnFirstUse(TyperCommand):
    """A command whose option group is made when Click first reads its parameters or callback (its `--help`,
    parsing its words): Typer builds the command from the signature without them; this rebuilds the parameters
    and the callback from the full one, as Typer would have."""

    _loaded = False

    def _load(self) -> None:
        self._loaded = True
        run = getattr(self._callback, "__wrapped__", None)  # Typer's wrapper of the option group's `run`
        load_options = getattr(run, "load_options", None)
        if load_options is None:
            return
        import typer
        from typer.main import get_command

        load_options()
        alone = typer.Typer(add_completion=False)  # the parameters only: no completion options of its own
        alone.command(self.name)(run)
        built = get_command(alone)
        self._params, self._callback = built.params, built.callback

    @property
    def params(self) -> list[Any]:
        if not self._loaded:
            self._load()
        return self._params

    @params.setter
    def params(self, value: list[Any]) -> None:
        self._params = value

    @property
    def callback(self) -> Callable[..., Any] | None:
        if not self._loaded:
            self._load()
        return self._callback

    @callback.setter
    def callback(self, value: Callable[..., Any] | None) -> None:
        self._callback = value
