"""The terminal: Rich consoles for results (stdout) and messages (stderr), `fail` for every
error a command reports, and `read_password`.

Exit codes: 1 the job, the stack or a login failed; 2 (the default) the input is wrong
(a bad option, or no such job, schedule, template or user); 3 the Prefect API cannot be
reached; 4 the API refused (not logged in, or not allowed).
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: MESSAGE` to stderr and end the command with exit code `code`."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # commands in it stay copyable
    raise typer.Exit(code)


def read_password(from_stdin: bool, confirm: bool = False, prompt: str = "Password") -> str:
    """From stdin (one line, for scripts) or a hidden prompt; never from the command line."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
