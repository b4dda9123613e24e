"""Refused anonymous requests stay audited, but bounded: per source address and window one
full row and one summary row with the count (Redis, and in-process without Redis), a cap on
addresses per window; refusals of known callers (403) stay one row each."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from swarmsync.api import create_app
from swarmsync.auth import audit
from swarmsync.db import AuditEvent
from tests.accounts.conftest import auth, clear_caches

WINDOW = 3


@pytest.fixture
def short_window(monkeypatch):
    monkeypatch.setenv("SWARMSYNC_AUDIT_REFUSAL_WINDOW_SECONDS", str(WINDOW))
    clear_caches()


def _at_window_start() -> None:
    """Wait for a fresh window, so a burst of requests falls into one."""
    time.sleep(WINDOW - time.time() % WINDOW + 0.05)


def _after_window() -> None:
    time.sleep(WINDOW - time.time() % WINDOW + 0.1)


def _rows_since(first_id: int, address: str | None = None, actor: str | None = None) -> list[AuditEvent]:
    rows = [e for e in audit.events(limit=1000) if e.id > first_id]  # reading summarises closed windows
    return [e for e in rows if (address is None or e.address == address or e.target == address)
            and (actor is None or e.actor == actor)]


def _last_id() -> int:
    newest = audit.events(limit=1)
    return newest[0].id if newest else 0


def _spam(client: TestClient, n: int) -> None:
    for i in range(n):
        headers = [{}, auth("sss_forged-session"), auth("ssk_forged-token"), auth("nonsense")][i % 4]
        assert client.get("/jobs", headers=headers).status_code == 401


def _check_bounded(first_id: int, address: str, n: int) -> None:
    before_close = _rows_since(first_id, address)
    assert len(before_close) == 1, [(e.action, e.detail) for e in before_close]
    first = before_close[0]
    assert (first.actor, first.action, first.outcome) == ("anonymous", "GET /jobs", "denied")
    assert first.detail["status"] == 401
    assert "counted in one row" in first.detail["aggregated"]
    _after_window()
    rows = _rows_since(first_id, address)
    assert len(rows) == 2, [(e.action, e.detail) for e in rows]
    summary = rows[0]
    assert (summary.action, summary.outcome, summary.target) == ("refused.summary", "denied", address)
    assert summary.detail["count"] == n - 1 and summary.detail["kind"] == "request"
    assert summary.detail["message"].startswith(f"{n - 1} more refused requests from {address} in the {WINDOW} s")
    assert len(_rows_since(first_id, address)) == 2  # summarised once, whoever reads


def test_anonymous_refusals_are_one_row_and_a_count_per_address_with_redis(accounts, short_window, redis_client):
    first_id = _last_id()
    with TestClient(create_app(), client=("192.0.2.10", 4000)) as spammer:
        _at_window_start()
        _spam(spammer, 60)
        assert list(redis_client.scan_iter(f"{accounts['SWARMSYNC_REDIS_PREFIX']}refusals:*"))  # counted in Redis
        _check_bounded(first_id, "192.0.2.10", 60)


def test_anonymous_refusals_are_bounded_without_redis_too(embedded, short_window):
    first_id = _last_id()
    with TestClient(create_app(), client=("192.0.2.11", 4000)) as spammer:
        _at_window_start()
        _spam(spammer, 40)
        _check_bounded(first_id, "192.0.2.11", 40)


def test_addresses_beyond_the_cap_share_one_bucket(accounts, short_window, monkeypatch):
    monkeypatch.setenv("SWARMSYNC_AUDIT_REFUSAL_MAX_ADDRESSES", "3")
    clear_caches()
    first_id = _last_id()
    addresses = [f"198.51.100.{i}" for i in range(1, 7)]
    app = create_app()
    _at_window_start()
    for address in addresses:  # not entered: the app's start and stop (which summarises) are not part of this
        _spam(TestClient(app, client=(address, 4000)), 5)
    _after_window()
    rows = _rows_since(first_id, actor="anonymous")
    assert len(rows) <= 2 * (3 + 1)
    full = [e for e in rows if e.action == "GET /jobs"]
    assert sorted(e.address for e in full)[:3] == addresses[:3] and len(full) == 4
    summaries = {e.target: e.detail["count"] for e in rows if e.action == "refused.summary"}
    assert summaries == {addresses[0]: 4, addresses[1]: 4, addresses[2]: 4, "*": 3 * 5 - 1}
    assert sum(summaries.values()) + len(full) == 6 * 5  # every refusal is still accounted for


def test_logins_while_locked_out_are_bounded_too(api, make_user, short_window, monkeypatch):
    monkeypatch.setenv("SWARMSYNC_LOGIN_MAX_FAILURES_PER_ADDRESS", "2")
    clear_caches()
    first_id = _last_id()
    with TestClient(create_app(), client=("192.0.2.20", 4000)) as attacker:
        for i in range(2):
            assert attacker.post("/auth/login", json={"username": f"g-{i}", "password": "x"}).status_code == 401
        _at_window_start()
        for i in range(30):
            assert attacker.post("/auth/login", json={"username": f"h-{i}", "password": "x"}).status_code == 429
        _after_window()
    rows = _rows_since(first_id, "192.0.2.20")
    wrong = [e for e in rows if e.detail.get("why") == "wrong username or password"]
    locked = [e for e in rows if e.detail.get("why") == "locked out"]
    summary = [e for e in rows if e.action == "refused.summary"]
    assert len(wrong) == 2 and len(locked) == 1 and locked[0].target == "h-0"
    assert len(summary) == 1 and summary[0].detail["count"] == 29 and summary[0].detail["kind"] == "login"


def test_refusals_of_known_callers_stay_one_row_each(api, make_user, short_window):
    viewer = make_user("viewer")
    token = viewer.login(api)
    first_id = _last_id()
    for _ in range(5):
        assert api.post("/jobs", json={"spec": {"image": "busybox"}}, headers=auth(token)).status_code == 403
    _after_window()
    rows = _rows_since(first_id, actor=viewer.username)
    assert len(rows) == 5 and all(e.outcome == "denied" and e.detail["status"] == 403 for e in rows)


def test_the_running_api_writes_the_summary_without_anyone_reading(embedded, short_window):
    from sqlalchemy import select

    from swarmsync.db import session_scope

    first_id = _last_id()
    with TestClient(create_app(), client=("192.0.2.30", 4000)) as spammer:
        _at_window_start()
        _spam(spammer, 10)
        time.sleep(2 * WINDOW + 0.5)  # the API's own round every window
        with session_scope() as session:  # straight from the table: no read through audit.events()
            rows = list(session.scalars(select(AuditEvent).where(AuditEvent.id > first_id,
                                                                 AuditEvent.address == "192.0.2.30")))
        assert sorted(e.action for e in rows) == ["GET /jobs", "refused.summary"]
        assert next(e for e in rows if e.action == "refused.summary").detail["count"] == 9
