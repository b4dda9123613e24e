"""Jobs through the API and `swarmsync.Client`: submit, follow, results, files, cancel,
all audited; the API holds the Prefect connection, the client never talks to Prefect."""

from __future__ import annotations

import io
import tarfile

import pytest

from swarmsync.auth import audit
from swarmsync.client import APIError, Client
from tests.accounts.conftest import auth
from tests.waiting import wait_until


@pytest.fixture
def client_for(api):
    """swarmsync.Client over the in-process API (an httpx transport, no port)."""

    def make(token: str) -> Client:
        return Client("http://testserver", token, transport=api._transport)  # the TestClient's ASGI transport

    return make


def test_an_operator_runs_a_job_through_the_client_and_downloads_its_output(
    api, make_user, client_for, busybox, no_leftover_containers,
):
    op = make_user("operator")
    client = client_for(op.login(api))
    job = client.submit(busybox, "mkdir -p /out && echo data > /out/f.txt && echo out; echo err >&2",
                        output_dir="/out", pull_policy="never", secret_env={"TOKEN": "s3cret-value"})
    job.wait(120)
    assert job.status() == "Completed"
    result = job.result()
    assert result.exit_code == 0 and result.manifest["files"]["output.txt"]["size"] > 0
    assert result.stdout == "out\n" and result.stderr == "err\n"
    assert any("out" in line for _ts, _name, line in job.logs())
    with tarfile.open(fileobj=io.BytesIO(client.read_archive_file(job.id, "files.tar.gz")), mode="r:gz") as tar:
        assert tar.extractfile("out/f.txt").read() == b"data\n"
    assert job.id in {str(run.id) for run in client.list_jobs(limit=20)}
    submitted = audit.events(actor=op.username, action="job.submit")
    assert submitted[0].target == job.id and submitted[0].detail["image"] == busybox
    assert "s3cret-value" not in str(submitted[0].detail)


def test_cancel_through_the_api_stops_the_job_and_is_audited(api, make_user, client_for, busybox,
                                                             no_leftover_containers):
    op = make_user("operator")
    client = client_for(op.login(api))
    job = client.submit(busybox, "echo started; sleep 60", pull_policy="never")
    wait_until(lambda: job.status() not in ("Scheduled", "Pending"), "the job starts", timeout=120)
    job.cancel()
    job.wait(60)
    assert job.status() == "Cancelled"
    assert audit.events(actor=op.username, action="job.cancel")[0].target == job.id
    again = api.post(f"/jobs/{job.id}/cancel", headers=auth(op.login(api)))
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


def test_a_viewer_can_read_but_not_submit_or_cancel(api, make_user, client_for, busybox):
    viewer = client_for(make_user("viewer").login(api))
    with pytest.raises(APIError, match="403.*may not jobs:submit") as denied:
        viewer.submit(busybox, "echo nope")
    assert denied.value.status == 403
    assert isinstance(viewer.list_jobs(limit=5), list)


def test_files_from_the_worker_host_are_for_admins_only(api, make_user, busybox):
    op = make_user("operator")
    spec = {"image": busybox, "command": "cat /in/x", "pull_policy": "never",
            "inputs": [{"path": "/in/x", "sha256": "0" * 64, "source": "/etc/shadow"}]}
    response = api.post("/jobs", json={"spec": spec}, headers=auth(op.login(api)))
    assert response.status_code == 403 and "pools:manage" in response.json()["detail"]


def test_invalid_jobs_get_a_clear_message_not_a_crash(api, make_user):
    token = make_user("operator").login(api)
    bad = api.post("/jobs", json={"spec": {"image": "busybox", "memory": "lots"}}, headers=auth(token))
    assert bad.status_code == 422 and "memory" in bad.text and "not understood" in bad.text
    unknown = api.post("/jobs", json={"spec": {"image": "busybox"}, "pool": "no-such-pool"}, headers=auth(token))
    assert unknown.status_code == 404 and "no-such-pool" in unknown.json()["detail"]
    missing = api.get("/jobs/00000000-0000-0000-0000-000000000000", headers=auth(token))
    assert missing.status_code == 404 and "no job" in missing.json()["detail"]


def test_a_job_with_services_through_the_api_and_its_services_output(api, make_user, client_for, busybox,
                                                                      no_leftover_containers):
    from swarmsync.compose import load_compose

    op = make_user("operator")
    client = client_for(op.login(api))
    job = client.submit(load_compose(f"""
services:
  web:
    image: {busybox}
    command: ["sh", "-c", "mkdir /w; echo reached-web > /w/i; echo web-up >&2; exec httpd -f -p 8080 -h /w"]
    healthcheck: {{test: "wget -qO- http://127.0.0.1:8080/i", interval: 300ms, retries: 30}}
  app: {{image: {busybox}, command: wget -qO- http://web:8080/i}}
""", main="app", pull_policy="never"))
    job.wait(120)
    assert job.status() == "Completed", job.result().message
    assert job.result().stdout == "reached-web\n"
    assert b"".join(client.iter_archive_file(job.id, "services/web/stderr.txt")) == b"web-up\n"
    assert set(job.result().manifest["containers"]) == {"web", "app"}
    wrong = api.get(f"/jobs/{job.id}/result.txt", params={"service": "web", "stream": "output"},
                    headers=auth(op.login(api)))
    assert wrong.status_code == 404 and "stdout and stderr" in wrong.json()["detail"]
