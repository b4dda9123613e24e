"""The dashboard's pure logic: the submit form -> JobSpec with errors per field (uploaded input
files with their SHA-256), the pool policy form -> the settings that changed, API refusals (as
the client keeps them) -> errors beside fields, table filters and chart data over the API's job
rows, and which pages each role sees."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, State, StateType

from swarmsync.auth.roles import ROLE_PERMISSIONS, Role
from swarmsync.dashboard import data, forms
from swarmsync.dashboard.navigation import visible_pages
from swarmsync.jobs import JobRow


def test_a_valid_form_becomes_a_jobspec_with_its_secret_apart():
    spec, secrets, errors = forms.build_submission(forms.SubmitForm(
        image="busybox", command="echo $A", env="A=1\nB=x=y", secret_env="TOKEN=s3cret", tags="a, b",
        fields={"cpu": "0.5", "memory": "64m", "timeout": "30", "pids_limit": "50", "output_dir": "/out",
                "gpus": "1", "allowed_exit_codes": "0, 3", "privileged": False}))
    assert errors == {}
    assert spec.env == {"A": "1", "B": "x=y"} and spec.cpu == 0.5 and spec.pids_limit == 50
    assert spec.tags == ["a", "b"] and spec.command == "echo $A"
    assert spec.gpus == 1 and spec.allowed_exit_codes == [0, 3] and not spec.privileged
    assert secrets == {"TOKEN": "s3cret"} and "s3cret" not in spec.model_dump_json()


def test_exec_form_splits_the_command_into_words():
    spec, _, errors = forms.build_submission(forms.SubmitForm(image="busybox", command="echo 'a b' c", shell=False))
    assert errors == {} and spec.command == ["echo", "a b", "c"]


def test_every_invalid_field_gets_its_own_error():
    spec, _, errors = forms.build_submission(forms.SubmitForm(
        image="", env="JUSTANAME", at=datetime.now(UTC) - timedelta(hours=2),
        fields={"memory": "lots", "cpu": "-2", "timeout": "x", "pids_limit": "2.5", "output_dir": "rel",
                "gpus": "some"}))
    assert spec is None
    assert set(errors) == {"image", "memory", "cpu", "timeout", "pids_limit", "env", "output_dir", "at", "gpus"}
    assert errors["timeout"] == "'x' is not a number"
    assert errors["env"] == "line 1: write NAME=value"


def test_required_host_labels_become_the_host_queue_and_conflict_with_a_named_queue():
    errors: dict[str, str] = {}
    assert forms.target_queue(forms.SubmitForm(requires="region=eu, gpu"), errors) == "host:gpu+region=eu"
    assert forms.target_queue(forms.SubmitForm(queue=" fast "), errors) == "fast" and errors == {}
    assert forms.target_queue(forms.SubmitForm(queue="fast", requires="gpu"), errors) == ""
    assert errors["requires"] == "give either a queue or the host labels the job requires, not both"
    errors.clear()
    forms.target_queue(forms.SubmitForm(requires="gpu+cuda"), errors)
    assert "'gpu+cuda'" in errors["requires"]


def _row(state: str, image: str, tags: list[str], created: datetime, user: str | None = None,
         ended: datetime | None = None) -> JobRow:
    """A job row as the API returns it, from a flow run in that state."""
    kind = {"Completed": StateType.COMPLETED, "Failed": StateType.FAILED, "Running": StateType.RUNNING,
            "Pending": StateType.PENDING, "Scheduled": StateType.SCHEDULED}[state]
    started = created + timedelta(seconds=5)
    run = FlowRun(flow_id=uuid4(), tags=tags + ([f"swarmsync.user:{user}"] if user else []),
                  parameters={"job": {"image": image, "command": ["echo", "hi"]}},
                  state=State(type=kind, name=state), created=created, expected_start_time=created,
                  start_time=started if kind != StateType.SCHEDULED and kind != StateType.PENDING else None,
                  end_time=ended)
    return JobRow.from_flow_run(run)


def test_filters_combine_state_image_tag_and_time():
    now = datetime.now(UTC)
    rows = [_row("Completed", "busybox", ["nightly"], now, user="alice", ended=now + timedelta(seconds=9)),
            _row("Failed", "alpine", [], now - timedelta(days=2), ended=now)]
    assert data.filter_rows(rows, ["Failed"]) == [rows[1]]
    assert data.filter_rows(rows, image="BUSY") == [rows[0]]
    assert data.filter_rows(rows, tag="night") == [rows[0]]
    assert data.filter_rows(rows, since=now - timedelta(hours=1)) == [rows[0]]
    assert data.filter_rows(rows, user="alice") == [rows[0]]
    assert data.filter_rows(rows, user="ali") == []  # a user name is matched whole
    [shown] = data.table(rows[:1])
    assert shown["user"] == "alice" and shown["tags"] == "nightly, swarmsync.user:alice"
    assert shown["command"] == "echo hi" and shown["duration_s"] == 4.0


def test_overview_figures_come_from_the_rows_final_state():
    now = datetime.now(UTC).replace(minute=30)
    rows = [_row("Completed", "busybox", [], now, ended=now + timedelta(seconds=10)),
            _row("Failed", "busybox", [], now, ended=now + timedelta(seconds=20)),
            _row("Running", "busybox", [], now), _row("Pending", "busybox", [], now),
            _row("Scheduled", "busybox", [], now)]
    assert [r.state for r in data.running_now(rows)] == ["Running", "Pending"]
    assert data.success_rate(rows) == 0.5
    assert sorted(data.durations(rows)) == [5.0, 15.0]
    assert {(x["state"], x["jobs"]) for x in data.jobs_per_hour(rows)} == {("Completed", 1), ("Failed", 1)}
    assert data.success_rate(rows[2:]) is None


def test_uploaded_files_become_inputs_with_their_sha256():
    upload = forms.Upload(key="k1", name="x.csv", data=b"a,b\n1,2\n", path="/in/x.csv",
                          expected_sha256=hashlib.sha256(b"a,b\n1,2\n").hexdigest().upper())
    spec, _, errors = forms.build_submission(forms.SubmitForm(image="busybox", command="cat /in/x.csv",
                                                              inputs=[upload]))
    assert errors == {}
    [item] = spec.inputs
    assert item.path == "/in/x.csv" and item.sha256 == upload.sha256
    assert base64.b64decode(item.content_b64) == b"a,b\n1,2\n"


def test_an_upload_whose_sha256_is_not_the_expected_one_is_refused_beside_it():
    wrong = forms.Upload(key="k1", name="x", data=b"data", path="/in/x", expected_sha256="0" * 64)
    relative = forms.Upload(key="k2", name="y", data=b"data", path="in/y")
    spec, _, errors = forms.build_submission(forms.SubmitForm(image="busybox", inputs=[wrong, relative]))
    assert spec is None
    assert "not the expected " + "0" * 64 in errors["input_sha256_k1"]
    assert hashlib.sha256(b"data").hexdigest() in errors["input_sha256_k1"]
    assert "must be an absolute file path" in errors["input_path_k2"]


def test_the_policy_form_sends_only_what_changed():
    current = {"allow_gpu": False, "max_cpu": 4.0, "max_memory": None, "default_pids_limit": 1024,
               "cap_drop": ["NET_RAW", "MKNOD"], "docker_host": "gpu-1", "pull_policy": "if-not-present"}
    values = {"allow_gpu": True, "max_cpu": "4", "max_memory": "8g", "default_pids_limit": "1024",
              "cap_drop": "NET_RAW, MKNOD", "docker_host": "", "pull_policy": "if-not-present"}
    changes, errors = forms.policy_changes(current, values)
    assert errors == {}
    assert changes == {"allow_gpu": True, "max_memory": "8g", "docker_host": None}
    changes, _ = forms.policy_changes({"cap_drop": None}, {"cap_drop": ""})
    assert changes == {}  # an unknown list shown empty is no order to drop nothing
    _, errors = forms.policy_changes(current, {**values, "max_pids": "many"})
    assert errors == {"max_pids": "'many' is not a whole number"}


def test_api_refusals_land_beside_the_field_they_name():
    from swarmsync.client import APIError

    pool = APIError(422, "422: max_memory: memory 'lots' is not understood; max_cpu: Input should be greater than 0",
                    detail="max_memory: memory 'lots' is not understood; max_cpu: Input should be greater than 0",
                    errors=[{"loc": ["body", "max_memory"], "msg": "memory 'lots' is not understood"},
                            {"loc": ["body", "max_cpu"], "msg": "Input should be greater than 0"}])
    assert data.form_errors(pool, {"max_memory": "max_memory", "max_cpu": "max_cpu"}) == {
        "max_memory": "memory 'lots' is not understood", "max_cpu": "Input should be greater than 0"}
    fastapi = APIError(422, "422: name: String should match pattern '^[a-z0-9][a-z0-9-]*$'",
                       detail=[{"type": "string_pattern_mismatch", "loc": ["body", "name"],
                                "msg": "String should match pattern '^[a-z0-9][a-z0-9-]*$'", "input": "Bad Name"}],
                       errors=[{"loc": ["body", "name"], "msg": "String should match pattern '^[a-z0-9][a-z0-9-]*$'"}])
    assert data.form_errors(fastapi, data.SCHEDULE_FIELDS, data.SCHEDULE_WORDS) == {
        "schedule_name": "String should match pattern '^[a-z0-9][a-z0-9-]*$'"}
    unknown = APIError(422, "422: max_gpus: not a pool setting", errors=[{"loc": ["body", "max_gpus"],
                                                                            "msg": "not a pool setting"}])
    assert data.form_errors(unknown, {"max_cpu": "max_cpu"}) == {"_": "max_gpus: not a pool setting"}
    zone = APIError(400, "400: time zone 'Mars/Base' is unknown: use an IANA name such as 'Europe/Berlin'",
                    detail="time zone 'Mars/Base' is unknown: use an IANA name such as 'Europe/Berlin'")
    assert list(data.form_errors(zone, data.SCHEDULE_FIELDS, data.SCHEDULE_WORDS)) == ["timezone"]
    cron = APIError(400, "400: cron expression '61 * * * *' is not valid: [61] is out of range",
                    detail="cron expression '61 * * * *' is not valid: [61] is out of range")
    assert list(data.form_errors(cron, data.SCHEDULE_FIELDS, data.SCHEDULE_WORDS)) == ["schedule_value"]
    refused = APIError(403, "403: role operator may not pools:manage", detail="role operator may not pools:manage")
    assert data.form_errors(refused, {}) == {"_": "role operator may not pools:manage"}


def test_the_client_keeps_the_api_refusal_as_sent():
    import httpx

    from swarmsync.client import APIError, APIInputError, Client

    body = {"detail": [{"type": "missing", "loc": ["body", "spec", "image"], "msg": "Field required", "input": {}}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(422, json=body))
    with pytest.raises(APIInputError) as refused:
        Client("http://api.test", transport=transport).me()
    assert str(refused.value) == "422: spec.image: Field required"  # the message as the CLI prints it
    assert refused.value.detail == body["detail"]
    assert refused.value.errors == [{"loc": ["body", "spec", "image"], "msg": "Field required"}]
    pool = {"detail": "max_cpu: Input should be greater than 0",
            "errors": [{"loc": ["body", "max_cpu"], "msg": "Input should be greater than 0"}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(422, json=pool))
    with pytest.raises(APIError) as refused:
        Client("http://api.test", transport=transport).update_pool("p", max_cpu=-1)
    assert str(refused.value) == "422: max_cpu: Input should be greater than 0"
    assert refused.value.detail == pool["detail"] and refused.value.errors == pool["errors"]
    transport = httpx.MockTransport(lambda request: httpx.Response(403, json={"detail": "role viewer may not x"}))
    with pytest.raises(APIError) as refused:
        Client("http://api.test", transport=transport).users()
    assert refused.value.status == 403 and refused.value.detail == "role viewer may not x"
    assert refused.value.errors == []


def test_each_role_sees_only_its_pages():
    titles = {role: [p.title for p in visible_pages([str(x) for x in ROLE_PERMISSIONS[role]])] for role in Role}
    assert titles[Role.VIEWER] == ["Overview", "Jobs", "Pipelines", "Schedules", "Alerts", "Workers", "Usage",
                                  "My keys", "Settings"]
    assert titles[Role.OPERATOR] == ["Overview", "Jobs", "Pipelines", "Submit", "Schedules", "Alerts", "Workers",
                                    "Usage", "My keys", "Settings"]
    assert titles[Role.ADMIN] == ["Overview", "Jobs", "Pipelines", "Submit", "Schedules", "Alerts", "Workers", "Usage",
                                 "Admin", "My keys", "Settings"]
    assert data.may({"permissions": ["jobs:read"]}, "jobs:submit") is False
    assert data.may(None, "jobs:read") is False


def test_a_dashboard_login_reaches_the_api_with_the_browsers_own_address_and_a_forged_one_gains_nothing():
    """The dashboard's X-Forwarded-For chain as the API reads it (the dashboard host, 127.0.0.1, and a
    reverse proxy, 10.0.0.2, trusted): each browser is counted under its own address."""
    from swarmsync.api.deps import client_address

    trusted = "127.0.0.1,10.0.0.2"

    def seen_by_api(peer_of_dashboard: str | None, forwarded_to_dashboard: str | None) -> str | None:
        chain = data.browser_address(peer_of_dashboard, forwarded_to_dashboard)
        return client_address("127.0.0.1", [chain] if chain else [], trusted)

    assert seen_by_api("203.0.113.5", None) == "203.0.113.5"
    assert seen_by_api("203.0.113.6", None) == "203.0.113.6"  # another person: another address, another limit
    assert seen_by_api("203.0.113.5", "198.51.100.9") == "203.0.113.5"  # made up by the browser: ignored
    assert seen_by_api("10.0.0.2", "203.0.113.7") == "203.0.113.7"  # through the trusted reverse proxy
    assert seen_by_api("10.0.0.2", "198.51.100.9, 203.0.113.7") == "203.0.113.7"  # forged before the proxy
    assert seen_by_api(None, None) == "127.0.0.1"  # no browser address known: the dashboard host itself
    assert data.browser_address("203.0.113.5", "x" * 5000) is not None and len(data.browser_address(
        "203.0.113.5", "x" * 5000)) <= 1000
