"""The Submit page beyond a plain job, in AppTest against the real stack: uploaded input files
(SHA-256 shown, sent and verified), a recurring job through /schedules, a job template through
/templates; the API's refusals shown beside the field they concern."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

import swarmsync
from swarmsync.auth import audit
from tests.dashboard.conftest import texts
from tests.dashboard.test_pages import SUBMIT, fill

PAYLOAD = b"id,value\n1,forty-two\n\xff binary tail\n"


def upload(at, *files: tuple[str, bytes]):
    at.file_uploader(key="submit_files").set_value([(name, content, "application/octet-stream")
                                                    for name, content in files])
    return at.run()


def input_keys(at, kind: str) -> list[str]:
    return [w.key for w in at.text_input if w.key.startswith(f"submit_input_{kind}_")]


@pytest.fixture
def submit_page(app_as):
    def open_as(role: str = "operator"):
        at, account = app_as(role)
        at.switch_page("views/submit.py").run()
        assert not at.exception
        return at, account

    return open_as


def test_an_uploaded_file_shows_its_sha256_and_the_job_reads_it_in_the_container(
    submit_page, api_client, busybox, no_leftover_containers,
):
    at, _ = submit_page()
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    upload(at, ("data.csv", PAYLOAD))
    assert f"SHA-256 `{digest}`" in texts(at)
    [path_key] = input_keys(at, "path")
    assert at.text_input(key=path_key).value == "/in/data.csv"  # the default path
    at.text_input(key=path_key).input("/work/x.csv")
    at.text_input(key=input_keys(at, "sha256")[0]).input(digest.upper())  # the expected one, as people paste it
    fill(at, image=busybox, command="sha256sum /work/x.csv; head -2 /work/x.csv")
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    assert at.session_state["submit_errors"] == {}

    job = api_client.get_job(at.session_state["submitted_job"]).wait(120)
    assert job.status() == "Completed", job.result().message
    assert job.result().stdout == f"{digest}  /work/x.csv\nid,value\n1,forty-two\n"
    [sent] = job.flow_run().parameters["job"]["inputs"]
    assert sent["path"] == "/work/x.csv" and sent["sha256"] == digest


def test_a_file_that_is_not_the_expected_one_is_refused_beside_it_and_nothing_is_submitted(
    submit_page, api_client, busybox,
):
    at, account = submit_page()
    upload(at, ("data.csv", PAYLOAD))
    expected = hashlib.sha256(b"the file I meant").hexdigest()
    at.text_input(key=input_keys(at, "sha256")[0]).input(expected)
    fill(at, image=busybox, command="cat /in/data.csv")
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    [(field, message)] = at.session_state["submit_errors"].items()
    assert field.startswith("input_sha256_") and f"not the expected {expected}" in message
    assert message in [e.value for e in at.error]
    assert "submitted_job" not in at.session_state
    assert not api_client.list_jobs(limit=20, user=account.username)


def test_on_a_schedule_creates_a_recurring_job_through_the_api_and_its_errors_sit_beside_their_fields(
    submit_page, busybox,
):
    at, account = submit_page()
    name = f"dash-form-{uuid.uuid4().hex[:6]}"
    fill(at, image=busybox, command="echo from a dashboard schedule", tags="form-schedule")
    at.radio(key="submit_when").set_value("On a schedule").run()
    assert at.button(key=SUBMIT).label == "Create schedule"
    at.text_input(key="submit_schedule_name").input(name)
    at.text_input(key="submit_schedule_value").input("61 * * * *")
    at.button(key=SUBMIT).click().run()
    errors = at.session_state["submit_errors"]
    assert list(errors) == ["schedule_value"] and "'61 * * * *'" in errors["schedule_value"]
    assert errors["schedule_value"] in [e.value for e in at.error]

    at.text_input(key="submit_schedule_value").input("0 3 1 1 *")  # 03:00 on 1 January: never during the test
    at.text_input(key="submit_timezone").input("Mars/Olympus_Mons")
    at.button(key=SUBMIT).click().run()
    assert list(at.session_state["submit_errors"]) == ["timezone"]
    assert "IANA" in at.session_state["submit_errors"]["timezone"]

    at.text_input(key="submit_timezone").input("Europe/Berlin")
    at.selectbox(key="submit_overlap").select("skip")
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    assert at.session_state["submit_errors"] == {}
    try:
        created = swarmsync.deployments.schedules.get(name)
        assert created.overlap == "skip"
        [when] = created.schedules
        assert when.description == "cron 0 3 1 1 * (Europe/Berlin)"
        assert created.job["image"] == busybox
        assert created.owner == account.username and created.project == "default"  # its runs show who made it
        assert f"Schedule {name} created" in texts(at)
        assert audit.events(actor=account.username, action="schedule.create")[0].target == f"default/{name}"
    finally:
        swarmsync.deployments.schedules.delete(name)


def test_save_as_job_template_goes_through_the_api_and_keeps_secrets_in_secret_blocks(submit_page, busybox):
    at, account = submit_page()
    fill(at, image=busybox, command="echo hello $WHO", env="WHO=team", memory="64m",
         secret_name="TOKEN", secret_value="template-secret-value")
    at.text_input(key="submit_template_name").input("Not A Name")
    at.button(key="save_template").click().run()
    assert list(at.session_state["submit_errors"]) == ["template_name"]
    assert at.session_state["submit_errors"]["template_name"] in [e.value for e in at.error]

    name = f"dash-tpl-{uuid.uuid4().hex[:6]}"
    at.text_input(key="submit_template_name").input(name)
    at.button(key="save_template").click().run()
    assert not at.exception
    assert at.session_state["submit_errors"] == {}
    try:
        saved = at.session_state["client"].templates()[name]
        assert saved["image"] == busybox and saved["env"] == {"WHO": "team"} and saved["memory"] == "64m"
        assert list(saved["secrets"]) == ["TOKEN"]  # a Secret block's name: the template's, the variable's, a hash
        assert re.fullmatch(rf"swarmsync-template-{name}-token-[0-9a-f]{{12}}", saved["secrets"]["TOKEN"])
        assert "template-secret-value" not in str(saved)
        assert f"Saved job template {name}" in texts(at)
        assert audit.events(actor=account.username, action="template.save")[0].target == f"default/{name}"
    finally:
        swarmsync.templates.delete_template(name)
