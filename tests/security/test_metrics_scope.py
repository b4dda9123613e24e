"""GET /metrics is for admins and scrapers: a token scoped `metrics:read` reads it and nothing else; other
users are refused (403), nobody without a token (401). (The matrix row of /metrics: test_authorization_matrix.)"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from swarmsync.api.app import ROUTERS
from swarmsync.auth import tokens
from swarmsync.auth.roles import Principal
from tests.accounts.conftest import auth

# routes anyone may call, and worker hosts' routes (a worker token only: a user's token is 401 there)
NOT_FOR_USERS = ("/auth/", "/health", "/tls/", "/worker/")
# a credential's own identity, as every token has it: who it is and what it may do (`swarmsync login` checks a
# token with it), and its user's password change, which needs that password itself
OWN_IDENTITY = {("GET", "/me"), ("POST", "/me/password")}


def scraper_token(owner: str) -> str:
    return tokens.create_token(Principal.local(), "prometheus", owner, ["metrics:read"]).token


def test_admins_and_scraper_tokens_read_metrics_other_users_are_refused(api, make_user):
    admin = make_user("admin")
    scraper = scraper_token(admin.username)
    for token in (admin.login(api), scraper):
        response = api.get("/metrics", headers=auth(token))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE swarmsync_jobs_total gauge" in response.text
        assert "swarmsync_api_request_duration_seconds_bucket" in response.text
    for role in ("operator", "viewer"):
        response = api.get("/metrics", headers=auth(make_user(role).login(api)))
        assert response.status_code == 403, response.text
        assert "may not metrics:read" in response.json()["detail"]
    assert api.get("/metrics").status_code == 401


def test_a_scraper_token_is_refused_on_every_other_route(api, make_user):
    scraper = auth(scraper_token(make_user("admin").username))
    called = []
    for route in (route for router in ROUTERS for route in router.routes):
        if not isinstance(route, APIRoute) or route.path == "/metrics" or route.path.startswith(NOT_FOR_USERS):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"\1", route.path)  # any value: the scope is checked before the object
        for method in route.methods - {"HEAD"}:
            if (method, route.path) in OWN_IDENTITY:
                continue
            response = api.request(method, path, headers=scraper, json={})
            assert response.status_code == 403, f"{method} {route.path}: {response.status_code} {response.text}"
            called.append(f"{method} {route.path}")
    assert {"GET /jobs", "POST /jobs", "GET /users", "POST /tokens", "GET /workers"} <= set(called)
    assert api.get("/me", headers=scraper).json()["permissions"] == ["metrics:read"]
