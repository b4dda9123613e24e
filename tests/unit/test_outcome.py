"""What an outcome means (swarmsync/outcome.py): message, final state, retry, manifest."""

from __future__ import annotations

import pytest

from swarmsync import outcome
from swarmsync.docker_runner import ContainerOutcome, ResolvedImage
from swarmsync.spec import JobSpec

SPEC = JobSpec(image="busybox", command="true", allowed_exit_codes=[0, 3], timeout=5, memory="16m")


@pytest.mark.parametrize(("exit_code", "reason", "state", "failure", "message"), [
    (0, None, "COMPLETED", False, "exit code 0"),
    (3, None, "COMPLETED", False, "exit code 3"),
    (1, None, "FAILED", True, "exit code 1 (allowed: 0, 3)"),
    (137, "timeout", "FAILED", True, "timed out after 5 s (exit code 137)"),
    (137, "oom", "FAILED", True, "killed: out of memory (limit 16m, exit code 137)"),
    (143, "cancelled", "CANCELLED", False, "cancelled (exit code 143)"),
    (None, "refused", "FAILED", True, None),
])
def test_each_end_of_a_container_has_one_state_and_message(exit_code, reason, state, failure, message):
    assert outcome.final_state_type(SPEC, exit_code, reason) == state
    assert outcome.is_failure(SPEC, exit_code, reason) is failure
    if message:
        assert outcome.describe(SPEC, exit_code, reason) == message


def test_final_states_are_prefects_own():
    assert outcome.final_state("COMPLETED", "ok").is_completed()
    assert outcome.final_state("CANCELLED", "stopped").is_cancelled()
    assert outcome.final_state("CRASHED?", "odd").is_failed()  # anything unknown fails


def test_the_manifest_has_timings_and_archive_links_are_urls():
    spec = JobSpec(image="busybox", command="true", secrets={"TOKEN": "swarmsync-secret-abc"})
    ended = ContainerOutcome(0, None, "exit code 0", 1_700_000_000.0, 1_700_000_001.5)
    manifest = outcome.build_manifest(spec, ResolvedImage("busybox", "sha256:1", "busybox@sha256:2"), ended,
                                      "COMPLETED", "w1")
    assert manifest["duration_seconds"] == 1.5 and manifest["state"] == "COMPLETED"
    assert manifest["started_at"].startswith("2023-11-14T22:13:20")
    assert outcome.archive_link("/srv/archive/x") == "file:///srv/archive/x"
    assert outcome.archive_link("s3://bucket/x") == "s3://bucket/x"
