"""Fixtures for the dashboard: the session `stack` (real Prefect, PostgreSQL, worker, the
SwarmSync API process and the dashboard process `swarmsync up` starts), users of each role
in the stack's database, and Streamlit's AppTest logged in as one of them.

The dashboard in AppTest talks to the stack's own API process over HTTP, as it does in
production; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.accounts import conftest as accounts_fixtures
from tests.accounts.conftest import PASSWORD, Account

make_user = accounts_fixtures.make_user  # users in the stack's database
quick_password_hashing = accounts_fixtures.quick_password_hashing  # autouse: cheap argon2 in-process

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture
def dashboard_options(stack, monkeypatch):
    """Options file removed after the test (it lives in the stack's SWARMSYNC_HOME)."""
    from swarmsync.dashboard.options import options_path

    yield options_path()
    options_path().unlink(missing_ok=True)


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    return at


def log_in(at: AppTest, account: Account, password: str | None = None) -> AppTest:
    at.text_input(key="login_username").input(account.username)
    at.text_input(key="login_password").input(password or account.password)
    at.button(key="FormSubmitter:login-Log in").click().run()
    return at


@pytest.fixture
def app_as(stack, make_user) -> Callable[[str], tuple[AppTest, Account]]:
    """A fresh dashboard session logged in as a new user of the given role."""

    def open_as(role: str) -> tuple[AppTest, Account]:
        account = make_user(role)
        at = log_in(new_app(), account)
        assert not at.exception, at.exception
        assert at.session_state["me"]["role"] == role
        return at, account

    return open_as


@pytest.fixture
def api_client(stack, make_user):
    """A swarmsync.Client logged in as an operator, for arranging jobs the pages then show."""
    from swarmsync.client import Client
    from swarmsync.dashboard.data import api_url

    account = make_user("operator")
    return Client.login(api_url(), account.username, PASSWORD)


def texts(at: AppTest) -> str:
    """Everything the page shows as text (markdown, captions, titles, alerts, code)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "success", "info",
                 "code", "metric"):
        for element in at.get(kind):
            parts.append(str(getattr(element, "value", "")) + " " + str(getattr(element, "label", "")))
    return "\n".join(parts)
