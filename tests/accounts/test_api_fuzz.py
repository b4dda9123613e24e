"""Fuzzing the API from its own OpenAPI description (schemathesis): whatever arrives,
as an admin or with no credentials, the answer is never a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from swarmsync.api import create_app
from swarmsync.auth import tokens
from swarmsync.auth.roles import Principal

EXAMPLES = 8  # per operation (~22 operations, each called as admin and anonymously): a bounded run


@pytest.fixture
def admin_headers(make_user) -> dict[str, str]:
    admin = make_user("admin", prefix="fuzz-admin")
    secret = tokens.create_token(Principal.local(), "fuzz", admin.username).token  # logout cannot end it
    return {"Authorization": f"Bearer {secret}"}


# The app reads its settings per request, so the fixtures' database and Redis apply.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_request_makes_the_api_fail(case, accounts, admin_headers):
    if case.path in ("/jobs", "/schedules") and case.method == "POST" and isinstance(case.body, dict):
        case.body["pool"] = "fuzz-no-such-pool"  # valid specs are refused (404/400) instead of run
    for headers in (admin_headers, {}):
        response = case.call(headers=headers)
        assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
