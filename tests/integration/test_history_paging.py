"""Paging a long job history (`list_jobs`, `GET /jobs` through the API): every job exactly once,
no gap and no duplicate, also when many jobs share a start time (a batch sent with one `at`).
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
from swarmsync.owners import user_tag

JOBS = 300


def create_runs(user: str, states) -> list[str]:
    """Flow runs of the default job deployment, tagged as `user`'s, each in the state `states(i)` gives."""
    async def create_all() -> list[str]:
        deployment = await asyncio.to_thread(jobs._deployment_id, jobs.deployment_for_pool(None), api_url())
        limit = asyncio.Semaphore(8)
        async with get_client() as client:
            async def one(i: int) -> str:
                async with limit:
                    run = await client.create_flow_run_from_deployment(
                        deployment, parameters={"job": {"image": "busybox", "command": ["true"]}},
                        state=states(i), tags=[user_tag(user)])
                return str(run.id)

            return await asyncio.gather(*(one(i) for i in range(JOBS)))

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
