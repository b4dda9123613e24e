"""`swarmsync`: the command tree, one Typer app per module, and the console entry point."""

from __future__ import annotations

import click
import httpx
import typer
from typer.core import TyperGroup

from swarmsync.auth.account_errors import AccountError, UserNotFound
from swarmsync.auth.roles import AuthError
from swarmsync.cli import (
    accounts,
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
    users,
    worker,
)
from swarmsync.cli.console import fail
from swarmsync.client import APIError
from swarmsync.connection import api_url
from swarmsync.tls_errors import TLSError


class OneLineErrors(TyperGroup):
    """Refusals, missing accounts and connection problems become one `error:` line, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (APIError, AuthError) as exc:
            fail(str(exc), 4)
        except TLSError as exc:
            fail(str(exc), 2)
        except (AccountError, UserNotFound, LookupError) as exc:
            fail(str(exc), 2)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 401:
                raise
            from swarmsync.doctor import prefect_auth_hint

            fail(f"the Prefect API at {api_url()} refused the request (401): {prefect_auth_hint()}", 4)
        except httpx.ConnectError as exc:
            from swarmsync.tls import is_verify_error

            if is_verify_error(exc):
                fail(f"the server's certificate did not verify: {exc}", 4)
            fail(f"cannot reach the Prefect API at {api_url()}: "
                 "is the stack up? ('swarmsync up', or set SWARMSYNC_API_URL)", 3)


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


def main() -> None:
    """Console entry point (`swarmsync`)."""
    app()


if __name__ == "__main__":
    main()
