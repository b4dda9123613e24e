"""Projects in the dashboard (AppTest, against the stack's API): the sidebar's picker lists only the
user's projects, the Jobs page shows only the picked project's jobs, and the Submit form offers only
projects where the user may submit, the job landing in the one chosen."""

from __future__ import annotations

import uuid

import pytest

import swarmsync
from swarmsync.auth import projects
from swarmsync.auth.roles import Principal
from swarmsync.client import Client
from swarmsync.dashboard import data
from tests.accounts.conftest import PASSWORD
from tests.dashboard.conftest import log_in, new_app


def new_project() -> str:
    name = f"p{uuid.uuid4().hex[:6]}"
    projects.create_project(Principal.local(), name)
    return name


def job_ids(at) -> set[str]:
    return set(at.dataframe[0].value["id"])


def test_the_picker_lists_the_users_projects_and_the_jobs_page_shows_the_picked_ones_jobs(
    stack, make_user, busybox, no_leftover_containers,
):
    ours, theirs, watched = new_project(), new_project(), new_project()
    account, other = make_user("operator"), make_user("operator")
    projects.set_member(Principal.local(), ours, account.username, "operator")
    projects.set_member(Principal.local(), watched, account.username, "viewer")  # reads, never submits there
    projects.set_member(Principal.local(), theirs, other.username, "operator")
    mine = Client.login(data.api_url(), account.username, PASSWORD)
    outsider = Client.login(data.api_url(), other.username, PASSWORD)
    in_ours = mine.submit(busybox, "true", delay="1d", project=ours)  # waits, Scheduled: never runs here
    in_default = mine.submit(busybox, "true", delay="1d")
    in_theirs = outsider.submit(busybox, "true", delay="1d", project=theirs)

    at = log_in(new_app(), account)
    assert not at.exception, at.exception
    picker = at.sidebar.selectbox(key="project_pick")
    assert picker.options == ["All my projects", *sorted(["default", ours, watched])]  # never `theirs`
    assert theirs not in picker.options

    picker.select(ours).run()
    at.switch_page("views/jobs.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert in_ours.id in set(table["id"]) and set(table["project"]) == {ours}
    assert in_default.id not in job_ids(at) and in_theirs.id not in job_ids(at)

    at.sidebar.selectbox(key="project_pick").select(data.ALL).run()
    assert {in_ours.id, in_default.id} <= job_ids(at) and in_theirs.id not in job_ids(at)

    at.sidebar.selectbox(key="project_pick").select(ours).run()
    at.switch_page("views/submit.py").run()
    assert not at.exception, at.exception
    form_project = at.selectbox(key="submit_project")
    assert form_project.value == ours  # the sidebar's pick
    assert form_project.options == sorted(["default", ours])  # a viewer's project is not offered
    at.text_input(key="submit_image").input(busybox)
    at.text_area(key="submit_command").input("echo in-the-picked-project")
    at.button(key="submit_job").click().run()
    assert not at.exception, at.exception
    assert at.session_state["submit_errors"] == {}
    submitted = mine.get_job(at.session_state["submitted_job"]).wait(120)
    assert submitted.row().project == ours and swarmsync.get_job(submitted.id).project == ours
    with pytest.raises(swarmsync.jobs.JobNotFound):
        outsider.get_job(submitted.id)

    for client, job in ((mine, in_ours), (mine, in_default), (outsider, in_theirs)):
        job.cancel()
        client.get_job(job.id).wait(60).delete()
    submitted.delete()
