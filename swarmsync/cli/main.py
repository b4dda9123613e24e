"""`swarmsync`: the command tree, one Typer app per module, and the console entry point."""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from swarmsync.cli.console import exit_code, fail
from swarmsync.errors import Error


class OneLineErrors(TyperGroup):
    """The one place a command's error becomes one `error:` line and an exit code, not a traceback:
    `swarmsync.Error` (and `LookupError`) by `console.EXIT_CODES`, Prefect's HTTP errors here."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (Error, LookupError) as exc:
            fail(str(exc), exit_code(exc))
        except Exception as exc:
            # an httpx error can only come from a command that imported httpx: `--help` does not load it
            httpx = sys.modules.get("httpx")
            if httpx is None or not isinstance(exc, (httpx.HTTPStatusError, httpx.ConnectError)):
                raise  # (typer's Exit too: a command's own exit code)
            from swarmsync.connection import api_url

            if isinstance(exc, httpx.HTTPStatusError):
                if exc.response.status_code != 401:
                    raise
                from swarmsync.doctor import prefect_auth_hint

                fail(f"the Prefect API at {api_url()} refused the request (401): {prefect_auth_hint()}", 4)
            if isinstance(exc, httpx.ConnectError):
                from swarmsync.tls import is_verify_error

                if is_verify_error(exc):
                    fail(f"the server's certificate did not verify: {exc}", 4)
                fail(f"cannot reach the Prefect API at {api_url()}: "
                     "is the stack up? ('swarmsync up', or set SWARMSYNC_API_URL)", 3)
            raise


# The command modules in the order of `swarmsync --help`: (module of swarmsync.cli, its group's name; None: its
# commands are top-level commands)
MODULES: tuple[tuple[str, str | None], ...] = (
    ("jobs", None), ("accounts", None), ("stack", None), ("worker", "worker"), ("pools", "pool"),
    ("users", "user"), ("projects", "project"), ("tokens", "token"), ("keys", "key"), ("schedules", "schedule"),
    ("templates", "template"), ("pipelines", "pipeline"), ("tls", "tls"), ("usage", None), ("alerts", "alert"),
)
# the first word of a command line -> the module whose app runs it (tests/unit/test_cli_start.py holds it to
# the modules' own commands; a word missing here still runs, from the whole tree)
FIRST_WORDS: dict[str, str] = {
    **dict.fromkeys(("submit", "jobs", "status", "logs", "result", "files", "cancel", "rerun", "delete"), "jobs"),
    **dict.fromkeys(("api", "login", "logout", "whoami"), "accounts"),
    **dict.fromkeys(("up", "login-link", "demo", "doctor", "dashboard", "env"), "stack"),
    "usage": "usage",
    **{group: module for module, group in MODULES if group},
}


def build_app(modules: tuple[tuple[str, str | None], ...] = MODULES) -> typer.Typer:
    """The `swarmsync` app with the commands of `modules` (all of them by default)."""
    app = typer.Typer(
        name="swarmsync", cls=OneLineErrors, no_args_is_help=True, add_completion=False,
        help="Run container jobs on Docker hosts through Prefect: now, later, or on a schedule.",
    )
    for module, group in modules:
        app.add_typer(importlib.import_module(f"swarmsync.cli.{module}").app, name=group)
    return app


def app_for(words: list[str]) -> typer.Typer:
    """The app that runs `swarmsync WORDS`: only the module of the first word's command. Typer converts every
    command of the app it runs into Click's, and every module is imported to be added: ~50 ms of each command
    for the whole tree (docs/benchmarks.md, CLI start). No words, `--help` or an unknown word: the whole app,
    which lists (or suggests) every command."""
    module = FIRST_WORDS.get(words[0]) if words else None
    return build_app(tuple(m for m in MODULES if m[0] == module) if module else MODULES)


def __getattr__(name: str) -> Any:
    if name == "app":  # the whole command tree (tests, `get_command(app)`): made on first use
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point (`swarmsync`)."""
    try:
        app_for(sys.argv[1:])()
    finally:
        # Python collects every object left at exit in one last pass: ~60 ms of every command, more than the
        # request of most (docs/benchmarks.md, CLI start). Frozen, they are left to the process's end, as a
        # collection would leave them; atexit handlers, flushing and finalizers of what is still referenced run
        # as before.
        gc.freeze()


if __name__ == "__main__":
    main()
