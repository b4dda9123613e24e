"""The dashboard's Usage page (AppTest, against the stack's API): the picked project's usage summed per
user, and its budget, which an admin sets there and a member only reads. The rows are `job_usage` rows
as the index writes them (tests/security/test_usage.py measures real jobs). The view in Chromium, once,
for its screenshot."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.db import JobUsage, session_scope
from swarmsync.usage_report import budget, set_budget
from tests.dashboard.conftest import log_in, new_app
from tests.dashboard.test_browser import SHOTS, browser_log_in, browser_page, evidence_on_failure, go, settle  # noqa: F401

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


def test_the_usage_view_in_a_browser_shows_the_chart_table_and_budget(browser_page, make_user):  # noqa: F811
    """Headless Chromium; the screenshot (test-artifacts/dashboard/usage.png) is docs/images/usage.png."""
    name = f"team-{uuid.uuid4().hex[:4]}"
    projects.create_project(Principal.local(), name)
    for owner, cpu, peak in (("ann", 5400.0, 900 * MIB), ("ann", 1800.0, 300 * MIB), ("bob", 3600.0, 2048 * MIB),
                             ("carol", 900.0, 120 * MIB)):
        used(name, owner, cpu, peak)
    set_budget(Principal.local(), name, 10.0)
    admin = make_user("admin")
    page = browser_page
    with evidence_on_failure(page):
        browser_log_in(page, admin)
        go(page, "Usage", "Usage", "Sum per")  # first: the Overview page it leaves refreshes on its own
        settle(page)
        pick(page, "Project", name)
        pick(page, "Sum per", "user")
        page.get_by_text(f"Budget of project {name}").wait_for()
        page.get_by_text("3.250 of 10 CPU-hours this month").wait_for()
        page.locator('[data-testid="stDataFrame"]').wait_for()
        settle(page)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
        page.wait_for_timeout(1000)  # the chart's own drawing, after Streamlit's run
        page.screenshot(path=str(SHOTS / "usage.png"), full_page=True)


def pick(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=re.compile(label))
    box.click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    settle(page)
