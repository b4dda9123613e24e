"""`swarmsync`: the command tree, one Typer app per module, and the console entry point."""

from __future__ import annotations

import gc
import sys

import typer
from typer.core import TyperGroup

from swarmsync.cli import (
    accounts,
    alerts,
    jobs,
    keys,
    pipelines,
    pools,
    projects,
    schedules,
    stack,
    templates,
    tls,
    tokens,
    usage,
    users,
    worker,
)
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


app = typer.Typer(
    name="swarmsync", cls=OneLineErrors, no_args_is_help=True, add_completion=False,
    help="Run container jobs on Docker hosts through Prefect: now, later, or on a schedule.",
)
app.add_typer(jobs.app)  # submit, jobs, status, logs, result, files, cancel, rerun, delete
app.add_typer(accounts.app)  # api, login, logout, whoami
app.add_typer(stack.app)  # up, demo, doctor, dashboard, env
app.add_typer(worker.app, name="worker")
app.add_typer(pools.app, name="pool")
app.add_typer(users.app, name="user")
app.add_typer(projects.app, name="project")
app.add_typer(tokens.app, name="token")
app.add_typer(keys.app, name="key")
app.add_typer(schedules.app, name="schedule")
app.add_typer(templates.app, name="template")
app.add_typer(pipelines.app, name="pipeline")
app.add_typer(tls.app, name="tls")
app.add_typer(usage.app)  # usage
app.add_typer(alerts.app, name="alert")


def main() -> None:
    """Console entry point (`swarmsync`)."""
    try:
        app()
    finally:
        # Python collects every object left at exit in one last pass: ~60 ms of every command, more than the
        # request of most (docs/benchmarks.md, CLI start). Frozen, they are left to the process's end, as a
        # collection would leave them; atexit handlers, flushing and finalizers of what is still referenced run
        # as before.
        gc.freeze()


if __name__ == "__main__":
    main()
