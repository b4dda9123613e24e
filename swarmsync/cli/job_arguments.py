"""From command-line words to job arguments: NAME=VALUE pairs, the command, JobSpec options;
and the errors that mean they are wrong (`input_errors` reports them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from swarmsync.cli.console import fail


def spec_errors() -> tuple[type[Exception], ...]:
    """What an invalid JobSpec raises (pydantic's `ValidationError`, `JobSpecError`), imported when asked."""
    from pydantic import ValidationError

    from swarmsync.spec import JobSpecError

    return (ValidationError, JobSpecError)


def submit_errors() -> tuple[type[Exception], ...]:
    """What an invalid submission raises: `spec_errors()` when the JobSpec is built here, the API's refusal of
    its fields (`APIInputError`, a 422) when the server validates them (`Client.submit`)."""
    from swarmsync.client import APIInputError

    return (*spec_errors(), APIInputError)


def invalid_reason(exc: Exception) -> str:
    """An invalid submission's reason, one `field: what is wrong` per field (`cpu: Input should be greater than
    0`), whether pydantic found it here or the API (its 422); anything else as it says."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError
        errors = errors(include_url=False, include_input=False)
    if not isinstance(errors, list) or not errors:
        return str(exc)
    named = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", [])]
        loc = loc[2:] if loc[:2] == ["body", "spec"] else loc[1:] if loc[:1] == ["body"] else loc
        named.append(f"{'.'.join(loc)}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(named)


def user_errors() -> tuple[type[Exception], ...]:
    """What a job, schedule or template call raises when its input is wrong: an invalid job or
    time, an unknown name. Commands report them with `fail` (exit code 2). Imported when asked (pydantic and the
    JobSpec models: not for `--help`); `USER_ERRORS` names the same tuple."""
    from swarmsync.timing import TimingError

    return (ValueError, *spec_errors(), TimingError, LookupError)


def __getattr__(name: str) -> Any:
    if name == "USER_ERRORS":  # as it always was, made on first use
        return user_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextmanager
def input_errors() -> Iterator[None]:
    """Within it, a `user_errors()` ends the command with its message (`fail`, exit code 2)."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        fail(str(exc))


def parse_env(pairs: list[str] | None, what: str) -> dict[str, str]:
    """NAME=VALUE pairs as a dict; `what` (the option, e.g. --env) names a malformed one."""
    env = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            fail(f"{what} {pair!r} must be NAME=VALUE")
        env[name] = value
    return env


def command_from(words: list[str] | None, shell: str | None) -> list[str] | str | None:
    """The job's command: the positional words (exec form, a leading `--` dropped) or --shell."""
    words = [w for i, w in enumerate(words or []) if not (i == 0 and w == "--")]
    if words and shell:
        fail("give a command or --shell, not both")
    return shell or (words or None)
