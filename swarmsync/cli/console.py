"""The terminal: Rich consoles for results (stdout) and messages (stderr), `fail` for every
error a command reports, `EXIT_CODES` (the exit code of each kind of `swarmsync.Error`), and
`read_password`.

Exit codes: 1 the job, the stack or a login failed; 2 (the default) the input is wrong
(a bad option, or no such job, schedule, template or user; a name taken); 3 a service cannot be
reached (the Prefect API, an archive store); 4 refused (not logged in, not allowed, or the API
answered an error).
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from swarmsync.client import APIError
from swarmsync.errors import ConflictError, Error, InvalidError, NotFoundError, RefusedError, UnavailableError

console = Console()
err = Console(stderr=True)


class DataTable(Table):
    """A table of data: its text cells are shown as they are, never read as Rich markup (a job's command
    `echo [/x]` would break the listing, `[bold]` restyle it); style a cell by giving a `rich.text.Text`."""

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in renderables), **kwargs)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: MESSAGE` to stderr and end the command with exit code `code`."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # commands in it stay copyable
    raise typer.Exit(code)


EXIT_CODES: dict[type[BaseException], int] = {
    Error: 1,  # something failed: a job, a step, the stack
    InvalidError: 2,
    NotFoundError: 2,
    ConflictError: 2,
    UnavailableError: 3,
    RefusedError: 4,
    APIError: 4,  # whatever the API answered (its status is in the message): the server said no
    LookupError: 2,  # a name a library did not find (Prefect's deployments, blocks)
}
"""The exit code of an error no command handled, by the first class of its MRO named here
(`main.OneLineErrors` prints it as one `error:` line)."""


def exit_code(exc: BaseException) -> int:
    """`EXIT_CODES` for `exc` (1 for an exception it does not name)."""
    return next((EXIT_CODES[cls] for cls in type(exc).__mro__ if cls in EXIT_CODES), 1)


def read_password(from_stdin: bool, confirm: bool = False, prompt: str = "Password") -> str:
    """From stdin (one line, for scripts) or a hidden prompt; never from the command line."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
