"""A container job on a real Docker engine, through a real Prefect server and worker."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import pytest
from sqlalchemy import select

import swarmsync
from swarmsync.archive import read_archive_file, verify_archive
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.spec import InputFile
from tests.waiting import wait_until


def test_successful_job_completes_and_archives_its_output(run_job, busybox):
    job = run_job(busybox, ["sh", "-c", "echo hello; echo oops >&2"])
    assert job.status() == "Completed"
    result = job.result()
    assert result.exit_code == 0 and result.state == "COMPLETED"
    assert result.stdout == "hello\n"
    assert result.stderr == "oops\n"
    assert sorted(result.output.splitlines()) == ["hello", "oops"]
    assert verify_archive(job.id) == []
    with session_scope() as session:
        row = session.scalars(select(ArchiveRecord).where(ArchiveRecord.job_id == job.id)).one()
    assert row.exit_code == 0 and row.state == "COMPLETED"
    assert row.manifest_sha256 == result.manifest["manifest_sha256"]


def test_shell_string_command_runs_in_the_images_shell(run_job, busybox):
    job = run_job(busybox, "x=41; echo $((x + 1))")
    assert job.result().stdout == "42\n"


def test_nonzero_exit_fails_with_the_code_recorded(run_job, busybox):
    job = run_job(busybox, "echo about to fail; exit 3")
    assert job.status() == "Failed"
    assert "exit code 3" in job.flow_run().state.message
    result = job.result()
    assert result.exit_code == 3 and result.state == "FAILED"
    assert result.stdout == "about to fail\n"


def test_allowed_exit_codes_count_as_success(run_job, busybox):
    job = run_job(busybox, "exit 5", allowed_exit_codes=[0, 5])
    assert job.status() == "Completed"
    assert job.result().exit_code == 5


def test_timeout_stops_the_container_and_fails(run_job, busybox, docker_client):
    started = time.monotonic()
    job = run_job(busybox, "echo sleeping; sleep 60", timeout=2)
    assert time.monotonic() - started < 40
    assert job.status() == "Failed"
    assert "timed out after 2 s" in job.flow_run().state.message
    assert job.result().reason == "timeout"
    assert job.result().stdout == "sleeping\n"


def test_memory_limit_exceeded_is_reported_as_oom(run_job, busybox):
    job = run_job(busybox, 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived', memory="16m")
    assert job.status() == "Failed"
    assert job.result().reason == "oom"
    assert "out of memory" in job.flow_run().state.message
    assert "survived" not in job.result().stdout


def test_output_lines_reach_prefect_before_the_container_exits(stack, busybox, no_leftover_containers):
    job = swarmsync.submit(busybox, "echo first-line; sleep 8; echo last-line")
    deadline = time.monotonic() + 60
    seen_while_running = False
    while time.monotonic() < deadline and not job.is_finished():
        messages = [m for _, _, m in job.logs()]
        if "first-line" in messages:
            assert "last-line" not in messages
            seen_while_running = job.status() == "Running"
            break
        time.sleep(0.2)
    assert seen_while_running, "first line was not in the Prefect log while the job ran"
    job.wait(60)
    assert job.result().stdout == "first-line\nlast-line\n"


def test_output_written_at_once_is_captured_exactly_once(stack, busybox, no_leftover_containers):
    # output printed the instant the container starts once came twice (attach replayed it)
    specs = [swarmsync.JobSpec(image=busybox, command=["echo", f"once-{i}"]) for i in range(12)]
    jobs = [entry.job for entry in swarmsync.submit_many(specs)]
    assert [job.wait(120).result().stdout for job in jobs] == [f"once-{i}\n" for i in range(12)]


def test_archive_keeps_non_utf8_bytes_exactly(run_job, busybox):
    job = run_job(busybox, "printf 'caf\\351 \\377\\376\\000end\\n'")
    expected = b"caf\xe9 \xff\xfe\x00end\n"
    data = read_archive_file(job.id, "stdout.txt")
    assert data == expected
    assert job.result().manifest["files"]["stdout.txt"]["sha256"] == hashlib.sha256(expected).hexdigest()


@pytest.mark.slow
def test_twenty_megabytes_of_output_archived_whole_and_truncated_in_log(run_job, busybox):
    line = b"0123456789 swarmsync line of output\n"
    count = 20_000_000 // len(line) + 1
    job = run_job(busybox, f"yes '{line[:-1].decode()}' | head -n {count}", timeout=120)
    expected = line * count
    data = read_archive_file(job.id, "stdout.txt")
    assert len(data) == len(expected) and data == expected
    meta = job.result().manifest["files"]["stdout.txt"]
    assert meta == {"sha256": hashlib.sha256(expected).hexdigest(), "size": len(expected)}
    deadline = time.monotonic() + 60
    while not (markers := [m for _, name, m in job.logs() if name.endswith("marker")]):
        assert time.monotonic() < deadline, "no truncation marker in the Prefect log"
        time.sleep(1)
    assert "truncated" in markers[0]


def test_input_payload_verified_and_output_folder_harvested(run_job, busybox, tmp_path):
    import io
    import tarfile

    payload = b"payload bytes\n"
    job = run_job(
        busybox, "mkdir -p /out && cp /input/data.txt /out/copy.txt && echo done > /out/flag",
        inputs=[InputFile.from_bytes("/input/data.txt", payload)], output_dir="/out",
    )
    assert job.status() == "Completed"
    archive = read_archive_file(job.id, "files.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = {m.name for m in tar.getmembers()}
        assert tar.extractfile("out/copy.txt").read() == payload
    assert {"out/copy.txt", "out/flag"} <= names
    assert job.result().manifest["files"]["files.tar.gz"]["sha256"] == hashlib.sha256(archive).hexdigest()


def test_payload_checksum_mismatch_is_refused_and_nothing_runs(run_job, busybox):
    bad = InputFile.from_bytes("/input/data.txt", b"real bytes", sha256="0" * 64)
    job = run_job(busybox, "echo this must not run", inputs=[bad])
    assert job.status() == "Failed"
    result = job.result()
    assert result.reason == "refused"
    assert "SHA-256 mismatch" in result.message
    assert result.exit_code is None
    assert "this must not run" not in result.output


def test_pinned_digest_must_match(run_job, busybox, docker_client):
    image_id = docker_client.images.get(busybox).id
    ok = run_job(f"{busybox.split(':')[0]}@{image_id}", "echo pinned")
    assert ok.status() == "Completed" and ok.result().manifest["image_digest"] == image_id
    wrong = run_job(f"{busybox.split(':')[0]}@sha256:{'1' * 64}", "echo never", pull_policy="never")
    assert wrong.status() == "Failed" and wrong.result().reason == "refused"


def test_image_without_default_command_needs_one(run_job, docker_client, busybox):
    from swarmsync.images import busybox_rootfs_tar, find_busybox

    docker_client.api.import_image_from_data(
        busybox_rootfs_tar(find_busybox()), repository="swarmsync/nocmd", tag="test"
    )
    job = run_job("swarmsync/nocmd:test", None)
    assert job.status() == "Failed"
    assert "no default command" in job.result().message


def test_secrets_never_reach_logs_parameters_or_archive(run_job, busybox):
    secret = "s3cr3t-Value-81273"
    job = run_job(busybox, "echo token=$API_TOKEN; echo $API_TOKEN >&2", secret_env={"API_TOKEN": secret})
    assert job.status() == "Completed"
    assert job.result().stdout == "token=***\n"
    for _, _, message in job.logs():
        assert secret not in message
    assert secret not in str(job.flow_run().parameters)
    for name in ("stdout.txt", "stderr.txt", "output.txt", "manifest.json"):
        assert secret.encode() not in read_archive_file(job.id, name)


def test_privileged_request_refused_by_default_policy(run_job, busybox):
    job = run_job(busybox, "echo hi", privileged=True)
    assert job.status() == "Failed"
    assert "privileged" in job.result().message


def test_cancel_stops_the_container_and_archives_partial_output(stack, busybox, no_leftover_containers):
    job = swarmsync.submit(busybox, "echo partial; sleep 60; echo never")
    deadline = time.monotonic() + 60
    while "partial" not in [m for _, _, m in job.logs()] and time.monotonic() < deadline:
        time.sleep(0.2)
    job.cancel()
    job.wait(30)
    assert job.status() == "Cancelled"
    assert job.result().stdout == "partial\n"


def test_cancel_before_any_worker_picks_the_job_up_ends_it_at_once(stack, busybox):
    from swarmsync.deployments.pools import create_pool

    idle_pool = f"idle-{uuid.uuid4().hex[:8]}"  # no worker serves it: the job stays Scheduled
    create_pool(idle_pool)
    job = swarmsync.submit(busybox, "echo never", pool=idle_pool)
    job.cancel()
    job.cancel()  # twice, as an impatient user would
    assert job.status() == "Cancelled"


def test_bad_spec_is_refused_before_submission(stack):
    with pytest.raises(ValueError, match="not a valid image reference"):
        swarmsync.submit("Not A Valid/Image!!", "echo")
    with pytest.raises(ValueError, match="memory"):
        swarmsync.submit("busybox", "echo", memory="12 parsecs")


def test_get_job_and_list_jobs_find_submitted_jobs(run_job, busybox):
    job = run_job(busybox, "echo listed")
    again = swarmsync.get_job(job.id)
    assert again.status() == "Completed"
    assert job.id in [str(r.id) for r in swarmsync.list_jobs(limit=50)]
    with pytest.raises(swarmsync.JobNotFound):
        swarmsync.get_job("00000000-0000-0000-0000-000000000000")
    with pytest.raises(swarmsync.JobNotFound):
        swarmsync.get_job("../../etc/passwd")


def test_failed_job_is_retried_in_a_fresh_container(run_job, busybox):
    job = run_job(busybox, "echo attempt; exit 1", retries=1, retry_delay=0)
    assert job.status() == "Failed"
    # the final state can be read before the last attempt's log lines reach the API (they are sent
    # in batches by Prefect's log worker): wait for them, with a deadline
    wait_until(lambda: len([m for _, name, m in job.logs() if name.endswith("stdout") and m == "attempt"]) == 2,
               "both attempts' output in the run's log", timeout=30)


def test_run_carries_one_summary_artifact_with_checksums_and_the_archive_link(run_job, busybox):
    """One artifact per job (issue 29: a second, Prefect's link artifact, cost a request, a row and an event)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    from swarmsync.connection import prefect_api

    job = run_job(busybox, "echo artifact")
    deadline = time.monotonic() + 30  # the worker attaches them right after the final state
    with prefect_api(), get_client(sync_client=True) as client:
        while True:
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[job.id]))
            )
            if artifacts or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        time.sleep(1)  # a second artifact (there must be none) would have come right after the first
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[job.id])))
    assert {a.task_run_id for a in artifacts} == {None}  # the flow run's own: archiving is a step of the flow
    with prefect_api(), get_client(sync_client=True) as client:  # one task run per job (each costs server CPU)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[job.id])))
    assert [t.name.rsplit("-", 1)[0] for t in tasks] == ["run-container"], [t.name for t in tasks]
    assert [a.type for a in artifacts] == ["markdown"], artifacts
    summary = artifacts[0].data
    sha = job.result().manifest["files"]["output.txt"]["sha256"]
    assert sha in summary and "| file | bytes | sha256 |" in summary, summary
    assert re.search(rf"- archive: \[archived result\]\(file:///\S*{job.id}\S*\) `/\S*{job.id}", summary), summary
