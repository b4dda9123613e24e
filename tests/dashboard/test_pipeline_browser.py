"""The dashboard's pipeline view in a real headless Chromium: the DAG drawn with each step's state.
The screenshot is kept as test-artifacts/dashboard/pipeline.png."""

from __future__ import annotations

import re
import uuid

from swarmsync.pipelines import list_pipelines, submit_pipeline
from tests.dashboard.test_browser import SHOTS, browser_log_in, browser_page, evidence_on_failure, go, settle  # noqa: F401


def test_the_pipeline_view_draws_the_dag_with_each_steps_state(browser_page, make_user, busybox,  # noqa: F811
                                                                no_leftover_containers):
    name = f"view-{uuid.uuid4().hex[:6]}"
    step = {"image": busybox, "pull_policy": "never"}
    pipeline = submit_pipeline({"name": name, "steps": {
        "fetch": {**step, "command": "mkdir -p /out && echo 1 > /out/x", "output_dir": "/out"},
        "transform": {**step, "command": "exit 3", "needs": ["fetch"], "inputs_from": {"fetch": "/in"}},
        "report": {**step, "command": "echo report", "needs": ["transform"]},
        "cleanup": {**step, "command": "echo cleaning", "needs": ["report"], "when": "failure"},
    }}).wait(150)
    assert list_pipelines(limit=1)[0].id == pipeline.id  # the newest created comes first
    page = browser_page
    admin = make_user("admin")
    with evidence_on_failure(page):
        browser_log_in(page, admin)
        go(page, "Pipelines", "Pipelines", "Open a pipeline")
        settle(page)
        picker = page.get_by_role("combobox", name=re.compile("Open a pipeline"))
        picker.click()
        page.keyboard.type(name)
        page.keyboard.press("Enter")
        settle(page)
        page.get_by_role("heading", name=f"Pipeline {name}").wait_for()
        chart = page.locator('[data-testid="stGraphVizChart"] svg')
        chart.locator("g.node").nth(3).wait_for()
        assert chart.locator("g.node").count() == 4 and chart.locator("g.edge").count() == 3
        drawn = chart.locator("g.node text").all_text_contents()
        for text in ("fetch", "transform", "report", "cleanup", "Completed", "Failed", "Skipped"):
            assert text in drawn, drawn
        settle(page)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / "pipeline.png"), full_page=True)
    assert pipeline.status() == "Failed"
