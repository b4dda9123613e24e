"""Every dashboard page in Streamlit's AppTest, against the real stack through the SwarmSync API."""

from __future__ import annotations

import json

import pytest

from swarmsync.dashboard import data
from swarmsync.dashboard.navigation import LOGIN, PAGES, visible_pages
from swarmsync.settings import get_settings
from tests.dashboard.conftest import log_in, new_app, texts
from tests.waiting import wait_until

LOGIN_ONLY_KEYS = {"login_username", "login_password"}
SUBMIT = "submit_job"


def archived(job_id: str, name: str) -> bytes:
    return (get_settings().archive_dir / job_id / name).read_bytes()


def open_job(at, job_id: str):
    at.switch_page("views/jobs.py").run()
    at.session_state["open_job"] = job_id
    return at.run()


# --- login ---------------------------------------------------------------------------------
def test_unauthenticated_users_see_only_the_login_form(stack):
    at = new_app()
    assert not at.exception
    assert {w.key for w in at.text_input} == LOGIN_ONLY_KEYS
    assert "Jobs" not in [t.value for t in at.title]
    with pytest.raises(ValueError, match=r"Known pages: \['[^,]*views/login.py'\]"):
        at.switch_page("views/jobs.py")  # not even registered before login
    assert "client" not in at.session_state


def test_a_one_time_login_link_logs_in_once_and_leaves_the_address(stack, make_user):
    from streamlit.testing.v1 import AppTest

    from swarmsync.auth import login_links
    from tests.dashboard.conftest import APP

    first = new_app()
    assert "swarmsync user add NAME --role operator" in texts(first)  # the login page says how to add users
    assert "swarmsync login-link" in texts(first)
    account = make_user("operator")
    secret = login_links.create_link(account.username)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["login"] = secret
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["me"]["username"] == account.username
    assert "login" not in at.query_params  # dropped from the URL
    again = AppTest.from_file(APP, default_timeout=90)
    again.query_params["login"] = secret
    again.run()
    assert "client" not in again.session_state
    assert "already used or has expired" in again.error[0].value


def test_a_page_run_without_a_session_refuses(stack):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(data.__file__).replace("data.py", "views/jobs.py"), default_timeout=60).run()
    assert "Log in first." in [w.value for w in at.warning]
    assert not at.dataframe


def test_a_wrong_password_is_refused_with_a_message(stack, make_user):
    at = log_in(new_app(), make_user("viewer"), password="not the password")
    assert "Wrong user name or password" in at.error[0].value
    assert "client" not in at.session_state


def test_login_keeps_the_token_server_side_and_logout_ends_the_session(app_as):
    at, account = app_as("viewer")
    client = at.session_state["client"]
    token = client.http.headers["Authorization"].removeprefix("Bearer ")
    assert token.startswith("sss_")
    assert token not in json.dumps(dict(at.query_params))
    at.button(key="logout").click().run()
    assert {w.key for w in at.text_input} == LOGIN_ONLY_KEYS
    from swarmsync.client import APIError, Client

    with pytest.raises(APIError, match="401"):
        Client(data.api_url(), token).me()  # the API ended the session, not just the page


# --- role gating ---------------------------------------------------------------------------
@pytest.mark.parametrize("role, expected", [
    ("viewer", ["Overview", "Jobs", "Pipelines", "Schedules", "Alerts", "Workers", "Usage", "My keys", "Settings"]),
    ("operator", ["Overview", "Jobs", "Pipelines", "Submit", "Schedules", "Alerts", "Workers", "Usage", "My keys",
                  "Settings"]),
    ("admin", [p.title for p in PAGES]),
])
def test_each_role_sees_its_pages(app_as, role, expected):
    """The pages the app itself registered in `st.navigation` for this user (AppTest lists them when
    asked for a page that is not there), not what a helper says it should register."""
    at, _ = app_as(role)
    registered = []
    for page in [*PAGES, LOGIN]:
        try:
            at.switch_page(f"views/{page.file}")  # refused unless the app registered it for this user
        except ValueError as exc:
            assert "Could not find a navigation page" in str(exc)
        else:
            registered.append(page.title)
    assert registered == expected  # the login page is gone once logged in
    assert [p.title for p in visible_pages(at.session_state["me"]["permissions"])] == expected


def test_a_viewer_cannot_reach_submit_or_admin(app_as):
    at, _ = app_as("viewer")
    for page in ("views/submit.py", "views/admin.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)  # not registered for a viewer
    at.switch_page("views/jobs.py").run()
    assert not at.exception and "Jobs" in [t.value for t in at.title]


def test_only_those_who_may_change_a_job_see_cancel_and_an_admin_cancels(app_as, api_client, busybox,
                                                                         no_leftover_containers):
    job = api_client.submit(busybox, "echo started; sleep 120", pull_policy="never", tags=["dash-cancel"])
    wait_until(lambda: job.status() == "Running", "job running")
    viewer, _ = app_as("viewer")
    open_job(viewer, job.id)
    assert not viewer.exception
    assert f"Job {job.id}" in [h.value for h in viewer.header]
    assert not [b for b in viewer.button if b.key in ("cancel", "rerun")]
    peer, _ = app_as("operator")  # an operator of the same project, but not its submitter
    open_job(peer, job.id)
    assert not [b for b in peer.button if b.key in ("cancel", "rerun")]

    admin, _ = app_as("admin")
    open_job(admin, job.id)
    admin.button(key="cancel").click().run()
    job.wait(120)
    assert job.status() == "Cancelled"
    assert not [b for b in viewer.run().button if b.key in ("cancel", "rerun")]


# --- submit ----------------------------------------------------------------------------------
def fill(at, **values):
    for name, value in values.items():
        at.text_input(key=f"submit_{name}").input(value) if name not in ("command", "env") else \
            at.text_area(key=f"submit_{name}").input(value)
    return at


def test_invalid_inputs_show_an_error_beside_each_field(app_as, api_client):
    at, _ = app_as("operator")
    at.switch_page("views/submit.py").run()
    before = len(api_client.list_jobs(limit=200))
    fill(at, image="Not An Image!!", memory="12 parsecs", cpu="-1", timeout="soon", env="NOVALUE",
         output_dir="relative/dir", pids_limit="1.5", requires="gpu, two words", gpus="a few")  # gpus: from JobSpec
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    errors = at.session_state["submit_errors"]
    assert set(errors) >= {"image", "memory", "cpu", "timeout", "env", "output_dir", "pids_limit", "requires", "gpus"}
    shown = [e.value for e in at.error]
    for field in ("image", "memory", "cpu", "timeout", "env", "output_dir", "pids_limit", "requires", "gpus"):
        assert errors[field] in shown
    assert "'soon' is not a number" in shown
    assert "submitted_job" not in at.session_state
    assert len(api_client.list_jobs(limit=200)) == before


def test_an_operator_submits_from_the_form_the_job_completes_and_downloads_match_the_archive(
    app_as, api_client, busybox, no_leftover_containers,
):
    at, _ = app_as("operator")
    at.switch_page("views/submit.py").run()
    fill(at, image=busybox, command="echo hello from the form; echo oops >&2; mkdir -p /out; echo f > /out/a.txt",
         env="GREETING=hi", memory="64m", timeout="60", tags="dashboard, form", output_dir="/out")
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    assert at.session_state["submit_errors"] == {}
    job_id = at.session_state["submitted_job"]
    job = api_client.get_job(job_id).wait(120)
    assert job.status() == "Completed"
    assert set(job.flow_run().tags) >= {"dashboard", "form"}

    open_job(at, job_id)
    assert not at.exception
    shown = texts(at)
    assert "Completed" in shown
    assert "hello from the form" in shown  # the log tail
    spec = json.loads(at.code[0].value)
    assert spec["env"] == {"GREETING": "hi"} and spec["memory"] == "64m"
    assert [r for r in at.dataframe[-1].value["file"]] == sorted(archived_manifest(job_id)["files"])
    output = data.download(at.session_state["client"], job_id, "output.txt")
    assert output == archived(job_id, "output.txt")
    assert b"hello from the form" in output and b"oops" in output
    assert data.download(at.session_state["client"], job_id, "files.tar.gz") == archived(job_id, "files.tar.gz")
    assert {b.proto.label for b in at.get("download_button")} >= {"Download output.txt", "Download files.tar.gz"}

    at.button(key="rerun").click().run()  # operators may run it again
    assert not at.exception
    again = [h.value for h in at.header][0].removeprefix("Job ")
    assert again != job_id
    assert api_client.get_job(again).wait(120).status() == "Completed"


def archived_manifest(job_id: str) -> dict:
    return json.loads(archived(job_id, "manifest.json"))


def test_a_secret_is_masked_on_the_job_page(app_as, api_client, busybox, no_leftover_containers):
    at, _ = app_as("operator")
    at.switch_page("views/submit.py").run()
    fill(at, image=busybox, command="echo token=$TOKEN", secret_name="TOKEN", secret_value="hunter2-value")
    at.button(key=SUBMIT).click().run()
    job_id = at.session_state["submitted_job"]
    api_client.get_job(job_id).wait(120)
    open_job(at, job_id)
    shown = texts(at)
    assert "hunter2-value" not in shown
    assert '"TOKEN": "***"' in at.code[0].value


# --- jobs table, overview, workers, admin, settings --------------------------------------------
def test_the_jobs_table_filters_by_state_image_and_tag(app_as, api_client, busybox, no_leftover_containers):
    ok = api_client.submit(busybox, "true", pull_policy="never", tags=["filter-ok"])
    bad = api_client.submit(busybox, "exit 3", pull_policy="never", tags=["filter-bad"])
    ok.wait(120), bad.wait(120)
    at, _ = app_as("viewer")
    at.switch_page("views/jobs.py").run()
    ids = list(at.dataframe[0].value["id"])
    assert ok.id in ids and bad.id in ids
    at.multiselect(key="filter_state").select("Failed").run()
    ids = list(at.dataframe[0].value["id"])
    assert bad.id in ids and ok.id not in ids
    at.multiselect(key="filter_state").unselect("Failed").run()
    at.text_input(key="filter_tag").input("filter-ok").run()
    assert list(at.dataframe[0].value["id"]) == [ok.id]
    at.text_input(key="filter_image").input("no-such-image").run()
    assert at.dataframe[0].value.empty


def test_the_overview_shows_each_part_and_the_charts(app_as, api_client, busybox, no_leftover_containers):
    api_client.submit(busybox, "true", pull_policy="never").wait(120)
    at, _ = app_as("viewer")
    at.switch_page("views/overview.py").run()
    assert not at.exception
    shown = texts(at)
    for part in ("Prefect API", "Docker engine", "Database", "Redis", "Workers"):
        assert part in shown
    assert "Success rate" in shown and "Running now" in shown
    charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert len(charts) >= 2  # jobs per hour and durations, drawn (their headings are shown even without data)
    assert "No finished jobs yet." not in shown
    depth = [df.value for df in at.dataframe if "waiting" in df.value.columns][0]
    assert get_settings().work_pool in list(depth["pool"]) and "scheduled later" in depth.columns


def test_the_workers_page_shows_pools_queues_and_a_read_only_policy_below_admin(app_as):
    viewer, _ = app_as("viewer")
    viewer.switch_page("views/workers.py").run()
    assert not viewer.exception
    shown = texts(viewer)
    assert f"Pool **{get_settings().work_pool}**" in " ".join(e.label for e in viewer.expander)
    assert "(read-only)" in shown
    settings = [df.value for df in viewer.dataframe if "setting" in df.value.columns][0]
    assert "max_memory" in list(settings["setting"])
    admin, _ = app_as("admin")
    admin.switch_page("views/workers.py").run()
    assert "(read-only)" not in texts(admin)


def test_schedules_list_next_runs_and_operators_pause_them_viewers_only_read(app_as, busybox):
    import uuid

    import swarmsync

    name = f"dash-{uuid.uuid4().hex[:8]}"
    operator, account = app_as("operator")
    swarmsync.deployments.schedules.create(name, busybox, "echo from-a-schedule", every="1h", pull_policy="never",
                                           owner=account.username)  # its owner may pause it
    viewer, _ = app_as("viewer")
    viewer.switch_page("views/schedules.py").run()
    assert not viewer.exception
    table = [df.value for df in viewer.dataframe if "next runs" in df.value.columns][0]
    row = table[table["name"] == name].iloc[0]
    assert row["next runs"] != "-" and not row["paused"]
    assert not [b for b in viewer.button if b.key == "schedule_pause"]  # read-only for viewers
    operator.switch_page("views/schedules.py").run()
    operator.selectbox(key="schedule_name").select(name).run()
    next(b for b in operator.button if b.key == "schedule_pause").click().run()
    assert not operator.exception
    assert swarmsync.deployments.schedules.get(name).paused
    swarmsync.deployments.schedules.delete(name)


def test_pipeline_schedules_are_listed_beside_job_schedules_and_their_owner_pauses_resumes_deletes(app_as, busybox):
    import uuid

    from swarmsync.deployments import pipeline_schedules

    name = f"dash-pl-{uuid.uuid4().hex[:6]}"
    operator, account = app_as("operator")
    pipeline_schedules.create(name, {"name": name, "steps": {"hello": {"image": busybox, "command": "true",
                                                                       "pull_policy": "never"}}},
                              every="1h", owner=account.username, paused=True)
    viewer, _ = app_as("viewer")
    viewer.switch_page("views/schedules.py").run()
    assert not viewer.exception
    table = [df.value for df in viewer.dataframe if "steps" in df.value.columns][0]
    row = table[table["name"] == name].iloc[0]
    assert row["steps"] == "hello" and row["pipeline"] == name and row["paused"]
    assert not [b for b in viewer.button if b.key == "pipeline_schedule_resume"]  # read-only for viewers
    operator.switch_page("views/schedules.py").run()
    operator.selectbox(key="pipeline_schedule_name").select(name).run()
    next(b for b in operator.button if b.key == "pipeline_schedule_resume").click().run()
    assert not operator.exception and not pipeline_schedules.get(name).paused
    next(b for b in operator.button if b.key == "pipeline_schedule_pause").click().run()
    assert pipeline_schedules.get(name).paused
    next(b for b in operator.button if b.key == "pipeline_schedule_delete").click().run()
    assert name not in [s.name for s in pipeline_schedules.list_schedules()]



def test_a_job_templates_owner_deletes_it_from_the_schedules_page(app_as, busybox):
    import uuid

    from swarmsync import templates

    name = f"dash-t-{uuid.uuid4().hex[:6]}"
    operator, account = app_as("operator")
    templates.save_template(name, busybox, "true", owner=account.username)
    operator.switch_page("views/schedules.py").run()
    assert name in list(operator.dataframe[-1].value["name"])  # the job templates, last on the page
    operator.selectbox(key="template_pick").select(name).run()
    operator.button(key="template_delete").click().run()
    assert not operator.exception, operator.exception
    assert f"deleted template {name}" in texts(operator)
    assert name not in templates.list_templates()


def test_admins_see_users_tokens_and_the_audit_log_and_add_a_user(app_as, make_user):
    someone = make_user("viewer")
    at, admin = app_as("admin")
    at.switch_page("views/admin.py").run()
    assert not at.exception
    assert someone.username in list(at.dataframe[0].value["username"])
    audit = at.dataframe[2].value
    assert ("login", admin.username) in set(zip(audit["action"], audit["actor"], strict=True))
    at.text_input(key="admin_new_name").input(f"{someone.username}-2")
    at.text_input(key="admin_new_password").input("another long password")
    at.selectbox(key="admin_new_role").select("operator")
    at.button(key="FormSubmitter:add_user-Add user").click().run()
    assert not at.exception
    names = {u["username"]: u["role"] for u in at.session_state["client"].users()}
    assert names[f"{someone.username}-2"] == "operator"


def test_settings_are_edited_by_admins_and_read_only_for_others(app_as, dashboard_options):
    viewer, _ = app_as("viewer")
    viewer.switch_page("views/settings.py").run()
    assert "Only admins may change these." in texts(viewer)
    assert not viewer.number_input
    admin, _ = app_as("admin")
    admin.switch_page("views/settings.py").run()
    assert data.api_url() in str(admin.dataframe[0].value["value"].tolist())
    admin.number_input(key="opt_refresh_seconds").set_value(7)
    admin.text_input(key="opt_prefect_ui_url").input("http://prefect.example:4200")
    admin.button(key="FormSubmitter:options-Save").click().run()
    assert not admin.exception
    saved = json.loads(dashboard_options.read_text())
    assert saved["refresh_seconds"] == 7 and saved["prefect_ui_url"] == "http://prefect.example:4200"
    assert data.run_url("abc") == "http://prefect.example:4200/runs/flow-run/abc"


def test_a_job_submitted_for_a_later_time_waits_scheduled_until_then_in_its_host_queue(app_as, api_client, busybox):
    from datetime import UTC, datetime, time, timedelta

    day = (datetime.now(UTC) + timedelta(days=30)).date()  # long after this test session's stack is gone
    at, _ = app_as("operator")
    at.switch_page("views/submit.py").run()
    fill(at, image=busybox, command="echo later", requires="region=eu, gpu")
    at.radio(key="submit_when").set_value("At a time (UTC)").run()
    at.date_input(key="submit_day").set_value(day)
    at.time_input(key="submit_time").set_value(time(3, 30))
    at.button(key=SUBMIT).click().run()
    assert at.session_state["submit_errors"] == {}
    run = api_client.get_job(at.session_state["submitted_job"]).flow_run()
    assert run.state.name == "Scheduled"
    assert run.expected_start_time == datetime.combine(day, time(3, 30), tzinfo=UTC)
    assert run.work_queue_name == "host:gpu+region=eu"  # only a worker with both labels takes it


def test_a_job_opens_by_clicking_its_row_which_shows_exit_code_duration_and_state_colour(
        app_as, api_client, busybox, no_leftover_containers):
    bad = api_client.submit(busybox, "exit 3", pull_policy="never", tags=["click-row"])
    bad.wait(120)
    at, _ = app_as("viewer")
    at.switch_page("views/jobs.py").run()
    at.text_input(key="filter_tag").input("click-row").run()
    table = at.dataframe[0].value
    assert list(table["id"]) == [bad.id]
    assert table["exit_code"][0] == 3 and table["duration_s"][0] >= 0
    assert table["state"][0] == "Failed"
    styled = data.styled_table(data.filter_rows(data.list_jobs(api_client, limit=50), tag="click-row")).to_html()
    assert f"background-color: {data.STATE_COLOURS['FAILED']}" in styled
    at.session_state["jobs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}  # a click on row 0
    at.run()
    assert not at.exception, at.exception
    assert f"Job {bad.id}" in [h.value for h in at.header]
    assert at.query_params["job"] == [bad.id] or at.query_params["job"] == bad.id
