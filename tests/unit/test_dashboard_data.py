"""The dashboard's pure logic: the submit form -> JobSpec with errors per field, table filters,
chart data, and which pages each role sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard import data
from dashboard.navigation import visible_pages
from swarmsync.auth.roles import ROLE_PERMISSIONS, Role


def test_a_valid_form_becomes_a_jobspec_with_its_secret_apart():
    spec, secrets, errors = data.build_submission(data.SubmitForm(
        image="busybox", command="echo $A", env="A=1\nB=x=y", secret_env="TOKEN=s3cret", cpu="0.5",
        memory="64m", timeout="30", pids_limit="50", tags="a, b", output_dir="/out"))
    assert errors == {}
    assert spec.env == {"A": "1", "B": "x=y"} and spec.cpu == 0.5 and spec.pids_limit == 50
    assert spec.tags == ["a", "b"] and spec.command == "echo $A"
    assert secrets == {"TOKEN": "s3cret"} and "s3cret" not in spec.model_dump_json()


def test_exec_form_splits_the_command_into_words():
    spec, _, errors = data.build_submission(data.SubmitForm(image="busybox", command="echo 'a b' c", shell=False))
    assert errors == {} and spec.command == ["echo", "a b", "c"]


def test_every_invalid_field_gets_its_own_error():
    spec, _, errors = data.build_submission(data.SubmitForm(
        image="", memory="lots", cpu="-2", timeout="x", pids_limit="2.5", env="JUSTANAME", output_dir="rel",
        at=datetime.now(UTC) - timedelta(hours=2)))
    assert spec is None
    assert set(errors) == {"image", "memory", "cpu", "timeout", "pids_limit", "env", "output_dir", "at"}
    assert errors["timeout"] == "'x' is not a number"
    assert errors["env"] == "line 1: write NAME=value"


def test_filters_combine_state_image_tag_and_time():
    now = datetime.now(UTC)
    rows = [
        {"state": "Completed", "image": "busybox", "tags": "nightly", "created": now},
        {"state": "Failed", "image": "alpine", "tags": "", "created": now - timedelta(days=2)},
    ]
    assert data.filter_rows(rows, ["Failed"]) == [rows[1]]
    assert data.filter_rows(rows, image="BUSY") == [rows[0]]
    assert data.filter_rows(rows, tag="night") == [rows[0]]
    assert data.filter_rows(rows, since=now - timedelta(hours=1)) == [rows[0]]


def test_each_role_sees_only_its_pages():
    titles = {role: [p.title for p in visible_pages([str(x) for x in ROLE_PERMISSIONS[role]])] for role in Role}
    assert titles[Role.VIEWER] == ["Overview", "Jobs", "Schedules", "Workers", "Settings"]
    assert titles[Role.OPERATOR] == ["Overview", "Jobs", "Submit", "Schedules", "Workers", "Settings"]
    assert titles[Role.ADMIN] == ["Overview", "Jobs", "Submit", "Schedules", "Workers", "Admin", "Settings"]
    assert data.may({"permissions": ["jobs:read"]}, "jobs:submit") is False
    assert data.may(None, "jobs:read") is False
