"""The dashboard's Usage page (AppTest, against the stack's API): the picked project's usage summed per
user, and its budget, which an admin sets there and a member only reads. The rows are `job_usage` rows
as the index writes them (tests/security/test_usage.py measures real jobs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.db import JobUsage, session_scope
from swarmsync.usage_report import budget
from tests.dashboard.conftest import log_in, new_app

MIB = 1024 * 1024


def used(project: str, owner: str, cpu: float, peak: int) -> None:
    with session_scope() as session:
        session.add(JobUsage(job_id=str(uuid.uuid4()), owner=owner, project=project, pool="swarmsync",
                             image="busybox", state="COMPLETED", cpu_seconds=cpu, memory_peak_bytes=peak,
                             block_read_bytes=0, block_write_bytes=MIB, net_rx_bytes=0, net_tx_bytes=0,
                             wall_seconds=cpu + 1, source="cgroup", finished_at=datetime.now(UTC)))


def test_the_usage_page_sums_the_picked_projects_users_and_an_admin_sets_its_budget(stack, make_user):
    name = f"use-{uuid.uuid4().hex[:6]}"
    projects.create_project(Principal.local(), name)
    member = make_user("operator")
    projects.set_member(Principal.local(), name, member.username, "operator")
    used(name, "ann", 30.0, 100 * MIB)
    used(name, "ann", 6.0, 300 * MIB)
    used(name, "bob", 12.0, 50 * MIB)

    at = log_in(new_app(), make_user("admin"))
    at.sidebar.selectbox(key="project_pick").select(name).run()
    at.switch_page("views/usage.py").run()
    at.selectbox(key="usage_by").select("user").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["user"]) == ["ann", "bob"] and list(table["jobs"]) == [2, 1]
    assert list(table["cpu_s"]) == [36.0, 12.0] and list(table["peak_memory_mib"]) == [300.0, 50.0]
    at.checkbox(key="budget_none").uncheck()
    at.number_input(key="budget_hours").set_value(5.0)
    at.button(key="FormSubmitter:budget_form-Save budget").click().run()
    assert not at.exception, at.exception
    assert budget(name) == 5.0

    reader = log_in(new_app(), member)
    reader.sidebar.selectbox(key="project_pick").select(name).run()
    reader.switch_page("views/usage.py").run()
    assert not reader.exception, reader.exception
    assert "0.013 of 5 CPU-hours this month" in reader.get("progress")[0].proto.text
    assert not reader.number_input  # only admins set budgets

