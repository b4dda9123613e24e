"""The gateway's table of Prefect calls a worker makes (swarmsync.gateway.rules): what each call is,
and that everything else is refused (None)."""

from __future__ import annotations

import uuid

import pytest

from swarmsync.gateway.rules import Kind, blocks_of_template, classify, secret_blocks_of

RUN = str(uuid.uuid4())


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("GET", "health", Kind.OPEN),
    ("GET", "/work_pools/swarmsync", Kind.POOL),
    ("POST", "work_pools/swarmsync/get_scheduled_flow_runs", Kind.POOL_POLL),
    ("POST", "work_pools/swarmsync/workers/heartbeat", Kind.POOL),
    ("POST", "work_pools/swarmsync/queues/", Kind.POOL_QUEUE_CREATE),
    ("GET", f"flow_runs/{RUN}", Kind.RUN_READ),
    ("GET", "flow_run_states/", Kind.RUN_STATES_READ),
    ("POST", f"flow_runs/{RUN}/set_state", Kind.RUN_CHANGE),
    ("PATCH", f"flow_runs/{RUN}/labels", Kind.RUN_CHANGE),
    ("POST", "flow_runs/filter", Kind.RUNS_FILTER),
    ("POST", "logs/", Kind.LOGS),
    ("POST", "artifacts/", Kind.ARTIFACT),
    ("GET", f"work_queues/{RUN}", Kind.QUEUE_READ),
    ("GET", "block_types/slug/secret/block_documents/name/db-password", Kind.BLOCK_BY_NAME),
])
def test_a_worker_call_is_classified(method: str, path: str, kind: Kind) -> None:
    call = classify(method, path)
    assert call is not None and call.kind is kind


def test_what_the_path_names_is_kept() -> None:
    assert classify("POST", f"flow_runs/{RUN}/set_state").object_id == RUN
    assert classify("GET", "work_pools/gpu-pool").pool == "gpu-pool"
    secret = classify("GET", "block_types/slug/secret/block_documents/name/db-password")
    assert (secret.block_type, secret.block_name) == ("secret", "db-password")


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "flow_runs/"),  # create a flow run
    ("POST", "deployments/"),  # create a deployment
    ("POST", f"deployments/{RUN}/create_flow_run"),
    ("DELETE", f"flow_runs/{RUN}"),
    ("POST", "work_pools/"),  # create a pool
    ("PATCH", "work_pools/swarmsync"),  # change a pool's policy
    ("DELETE", "admin/database"),
    ("POST", "block_documents/"),
    ("POST", "block_documents/filter"),  # list blocks (secrets)
    ("GET", "variables/name/x"),
    ("POST", "automations/"),
    ("GET", f"flow_runs/{RUN}/../../admin/settings"),
    ("GET", "admin/settings"),
    ("GET", "work_pools/swarmsync/queues/.."),  # dot segments: Prefect would serve another path
    ("GET", "block_types/slug/.."),
    ("GET", "work_pools/swarmsync%2F..%2Fother"),
    ("GET", "work_pools//swarmsync"),
])
def test_anything_else_is_refused(method: str, path: str) -> None:
    assert classify(method, path) is None


def test_the_secrets_a_run_reads() -> None:
    parameters = {"job": {"secrets": {"TOKEN": "alice--api-token"},
                          "services": {"db": {"secrets": {"PW": "db-pw"}}, "cache": {}}}}
    assert secret_blocks_of(parameters) == {"alice--api-token", "db-pw"}
    assert secret_blocks_of(None) == set()


def test_the_blocks_a_pool_template_names() -> None:
    block_id = str(uuid.uuid4())
    template = {"job_configuration": {"docker_host": "{{ prefect.blocks.docker-host.lab-engine }}"},
                "variables": {"properties": {"registry_credentials": {
                    "default": {"$ref": {"block_document_id": block_id}}}}}}
    named, ids = blocks_of_template(template)
    assert named == {("docker-host", "lab-engine")}
    assert ids == {block_id}
