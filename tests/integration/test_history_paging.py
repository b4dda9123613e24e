"""Paging a long job history (`list_jobs`, `GET /jobs` through the API): every job exactly once,
no gap and no duplicate, also when many jobs share a start time (a batch sent with one `at`), by offset and
by cursor (also while jobs are added); a cursor taken from another user's listing shows nothing of theirs.
Jobs are created as Prefect flow runs of the job deployment without running a container."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Completed, Scheduled

from swarmsync import jobs
from swarmsync.connection import api_url, prefect_api
from swarmsync.owners import project_tag, user_tag

JOBS = 300


def create_runs(user: str, states, count: int = JOBS, project: str | None = None) -> list[str]:
    """`count` flow runs of the default job deployment, tagged as `user`'s (and `project`'s), each in the state
    `states(i)` gives."""
    async def create_all() -> list[str]:
        deployment = await asyncio.to_thread(jobs._deployment_id, jobs.deployment_for_pool(None), api_url())
        limit = asyncio.Semaphore(8)
        async with get_client() as client:
            async def one(i: int) -> str:
                async with limit:
                    run = await client.create_flow_run_from_deployment(
                        deployment, parameters={"job": {"image": "busybox", "command": ["true"]}},
                        state=states(i), tags=[user_tag(user), *([project_tag(project)] if project else [])])
                return str(run.id)

            return await asyncio.gather(*(one(i) for i in range(count)))

    with prefect_api():
        return asyncio.run(create_all())


def delete_runs(user: str) -> None:
    async def delete_all() -> None:
        async with get_client() as client:
            while runs := await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[user_tag(user)])), limit=200):
                for run in runs:  # one at a time: concurrent deletes can deadlock in Prefect's database
                    await client.delete_flow_run(run.id)

    with prefect_api():
        asyncio.run(delete_all())


def pages(user: str, limit: int) -> list[str]:
    return [row.id for row in page_rows(user, limit)]


def page_rows(user: str, limit: int) -> list[jobs.JobRow]:
    seen, offset = [], 0
    while rows := jobs.list_jobs(limit=limit, user=user, offset=offset):
        seen += rows
        offset += limit
    return seen


@pytest.fixture
def batch_user(stack):
    user = f"batch-{uuid.uuid4().hex[:6]}"
    yield user
    delete_runs(user)


def test_a_batch_sharing_one_start_time_pages_without_gaps_or_duplicates(batch_user, remote_api):
    at = datetime.now(UTC) + timedelta(days=3)  # one `at` for all: every run has the same expected start time
    made = set(create_runs(batch_user, lambda i: Scheduled(scheduled_time=at)))
    for limit in (50, 200):
        seen = pages(batch_user, limit)
        assert len(seen) == len(set(seen)), f"limit {limit}: {len(seen) - len(set(seen))} duplicates"
        assert set(seen) == made, f"limit {limit}: {len(made - set(seen))} jobs never listed"
    url, headers = remote_api
    seen, offset = [], 0
    while True:  # the API's own paging, X-Next-Offset
        response = httpx.get(f"{url}/jobs", params={"limit": 200, "offset": offset, "user": batch_user},
                             headers=headers, timeout=120)
        assert response.status_code == 200, response.text
        seen += [row["id"] for row in response.json()]
        if "X-Next-Offset" not in response.headers:
            break
        offset = int(response.headers["X-Next-Offset"])
    assert sorted(seen) == sorted(made)


def test_finished_jobs_page_newest_first_without_gaps_or_duplicates(batch_user):
    made = create_runs(batch_user, lambda i: Completed(message=f"job {i}"))
    rows = page_rows(batch_user, 50)
    seen = [row.id for row in rows]
    assert len(seen) == len(set(seen)) == JOBS and set(seen) == set(made)
    starts = [row.flow_run.expected_start_time for row in rows]
    assert starts == sorted(starts, reverse=True)


@pytest.fixture
def remote_api(stack):
    from swarmsync.auth import tokens, users
    from swarmsync.auth.roles import Principal

    name = f"pager-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, "correct horse battery staple", "admin")
    token = tokens.create_token(Principal.local(), "paging", name).token
    return f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}", {"Authorization": f"Bearer {token}"}


def walk_by_cursor(url: str, headers: dict[str, str], params: dict[str, str | int],
                   between=lambda: None) -> list[dict]:
    """Every page of `GET /jobs` by its X-Next-Cursor (`between()` after each page); the rows in order."""
    rows: list[dict] = []
    after = None
    for _ in range(100):
        response = httpx.get(f"{url}/jobs", params={**params, **({"after": after} if after else {})},
                             headers=headers, timeout=120)
        assert response.status_code == 200, response.text
        rows += response.json()
        after = response.headers.get("X-Next-Cursor")
        if after is None:
            return rows
        assert f"after={after}" in response.headers["Link"] and "offset=" not in response.headers["Link"]
        between()
    raise AssertionError("more than 100 pages")


def test_walking_every_page_by_cursor_lists_each_job_once_in_order_while_jobs_are_added(batch_user, remote_api):
    """Due jobs newest first, then later ones soonest first, each once, with a batch sharing one time straddling
    page edges; jobs submitted during the walk are listed at most once (after the walk's start: among the later
    ones), and never in place of one that was there."""
    now = datetime.now(UTC)
    batch_at = now + timedelta(days=2)

    def state(i: int):
        if i % 3 == 0:
            return Scheduled(scheduled_time=batch_at)  # 100 sharing one time: a batch sent with one `at`
        if i % 3 == 1:
            return Scheduled(scheduled_time=now + timedelta(hours=1, minutes=i))  # later, one time each
        return Completed(message=f"job {i}")  # due: finished

    made = set(create_runs(batch_user, state))
    added: list[str] = []
    url, headers = remote_api
    rows = walk_by_cursor(url, headers, {"limit": 45, "user": batch_user},
                          between=lambda: added.extend(create_runs(batch_user, lambda i: None, count=2)))
    seen = [row["id"] for row in rows]
    assert len(seen) == len(set(seen)), f"{len(seen) - len(set(seen))} listed twice"
    assert made <= set(seen), f"{len(made - set(seen))} jobs never listed"
    assert set(seen) - made <= set(added) and added, "only jobs of this walk, and some were added during it"
    keys = [(datetime.fromisoformat(row["scheduled"]), row["id"]) for row in rows]
    due = 1
    while due < len(keys) and keys[due] < keys[due - 1]:
        due += 1
    assert due >= JOBS // 3, "the finished jobs come first, newest first"
    later = keys[due:]
    assert later == sorted(later) and len(set(later)) == len(later), "then the later ones, soonest first"
    assert not later or later[0][0] > keys[0][0], "every later job is due after every due one"


@pytest.fixture
def two_teams(stack):
    """Two users, each an operator of a project of their own (not of the default one), each with 6 jobs."""
    from swarmsync.auth import projects, tokens, users
    from swarmsync.auth.roles import Principal

    local, teams = Principal.local(), []
    for _ in range(2):
        name = f"team-{uuid.uuid4().hex[:6]}"
        users.add_user(local, name, "correct horse battery staple", "operator", join_default=False)
        projects.create_project(local, name)
        projects.set_member(local, name, name, "operator")
        made = create_runs(name, lambda i: Completed(message=f"job {i}"), count=6, project=name)
        teams.append((name, {"Authorization": f"Bearer {tokens.create_token(local, 'paging', name).token}"}, made))
    yield teams
    for name, _headers, _made in teams:
        delete_runs(name)


def test_a_cursor_from_another_users_listing_shows_nothing_of_their_projects(stack, two_teams):
    url = f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}"
    (first, first_headers, first_jobs), (second, second_headers, second_jobs) = two_teams
    page = httpx.get(f"{url}/jobs", params={"limit": 2}, headers=first_headers, timeout=120)
    assert page.status_code == 200 and {row["id"] for row in page.json()} <= set(first_jobs)
    cursor = page.headers["X-Next-Cursor"]
    for params in ({}, {"project": first}, {"user": first}):
        borrowed = httpx.get(f"{url}/jobs", params={"limit": 50, "after": cursor, **params}, headers=second_headers,
                             timeout=120)
        assert borrowed.status_code == 200, borrowed.text
        assert not {row["id"] for row in borrowed.json()} & set(first_jobs), f"{params}: another project's jobs"
        assert all(row["project"] == second for row in borrowed.json())
    made_up = httpx.get(f"{url}/jobs", params={"after": "not-a-cursor"}, headers=second_headers, timeout=120)
    assert made_up.status_code == 422 and "not a job listing cursor" in made_up.text, made_up.text
    both = httpx.get(f"{url}/jobs", params={"after": cursor, "offset": 5}, headers=second_headers, timeout=120)
    assert both.status_code == 422 and "not both" in both.text



def test_prefects_small_tables_are_analyzed_so_listings_read_by_index(stack):
    """Never analyzed, Prefect's `flow` table makes PostgreSQL scan every flow run for each page of a listing
    (swarmsync/planner_stats.py): the server analyzes it and has autovacuum analyze it after any change."""
    import os
    import time

    import sqlalchemy as sa

    from swarmsync.planner_stats import SMALL_TABLES, sync_url

    engine = sa.create_engine(sync_url(os.environ["PREFECT_API_DATABASE_CONNECTION_URL"]))
    deadline = time.monotonic() + 120
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.execute(sa.text(
                    "SELECT relname, reltuples, reloptions FROM pg_class WHERE relname = ANY(:names) "
                    "AND relkind = 'r'"), {"names": list(SMALL_TABLES)}).all()
            if len(rows) == len(SMALL_TABLES) and all(reltuples >= 0 for _name, reltuples, _opts in rows):
                break
            assert time.monotonic() < deadline, f"not analyzed: {rows}"
            time.sleep(1)
        for name, _reltuples, options in rows:
            assert "autovacuum_analyze_threshold=0" in (options or []), f"{name}: {options}"
    finally:
        engine.dispose()


def test_analyzing_the_small_tables_gives_them_statistics_and_an_analyze_after_any_change():
    """`analyze_small_tables` on a fresh PostgreSQL database: nothing to do before Prefect made `flow`; then
    each small table analyzed (reltuples known: not -1) and set to be analyzed again after any change."""
    import sqlalchemy as sa

    from swarmsync.planner_stats import SMALL_TABLES, analyze_small_tables
    from tests.conftest import create_pg_database, drop_pg_database

    url = create_pg_database()
    engine = sa.create_engine(url)
    try:
        assert analyze_small_tables(url) == []
        with engine.begin() as connection:
            for table in SMALL_TABLES:
                connection.execute(sa.text(f'CREATE TABLE "{table}" (id int primary key)'))
                connection.execute(sa.text(f'INSERT INTO "{table}" VALUES (1), (2)'))
        assert analyze_small_tables(url) == list(SMALL_TABLES)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT relname, reltuples, reloptions FROM pg_class "
                                              "WHERE relname = ANY(:names) AND relkind = 'r'"),
                                      {"names": list(SMALL_TABLES)}).all()
        assert {name: (reltuples, "autovacuum_analyze_threshold=0" in options) for name, reltuples, options in rows} \
            == dict.fromkeys(SMALL_TABLES, (2, True))
    finally:
        engine.dispose()
        drop_pg_database(url)


class _AskNothing:
    """A Prefect client stand-in that fails if anything is asked of it."""

    def __getattr__(self, attr: str):
        raise AssertionError(f"the deployment was read again ({attr})")


def test_a_known_job_deployment_is_not_read_again_through_a_given_client(stack):
    """`submit` passes its own Prefect client to `_deployment_id`; a deployment this process already knows is not
    read again (keyed by that client too, every submit's lookup missed and the remembered ids grew by one each)."""
    with prefect_api():
        name = jobs.deployment_for_pool(None)
        known = jobs._deployment_id(name, api_url())
        assert jobs._deployment_id(name, api_url(), _AskNothing()) == known
