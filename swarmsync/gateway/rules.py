"""What a Prefect API call from a worker is: pure classification of (method, path), no I/O.

Each call a SwarmSync worker (and the job flow in its process) makes is one `Call` kind; anything
else is `None` and refused. The kinds say what must be checked (`scope.py`): the pool named in the
path, the flow run or task run named in it, the body, or the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    OPEN = "open"  # health, version: nothing to check
    FLOW = "flow"  # a flow's definition (a name and id; no parameters, no secrets)
    SCHEMA = "schema"  # a block type or schema (public definitions)
    POOL = "pool"  # a call on the token's own pool (read it, heartbeat, list its workers or queues)
    POOL_POLL = "pool-poll"  # get_scheduled_flow_runs: queues narrowed to the token's
    POOL_QUEUE_CREATE = "pool-queue-create"  # a queue of the token's pool
    DEPLOYMENT_READ = "deployment-read"  # checked on the response: of the token's pool
    QUEUE_READ = "queue-read"  # a work queue by id: checked on the response
    RUN_READ = "run-read"  # a flow run: checked on the response
    RUN_STATES_READ = "run-states-read"  # a flow run's states (`?flow_run_id=`): the run checked before
    RUN_CHANGE = "run-change"  # a flow run's state, name or labels: checked before
    RUNS_FILTER = "runs-filter"  # flow runs: the filter narrowed to the token's pool
    TASK_RUN_CREATE = "task-run-create"  # body's flow_run_id
    TASK_RUN_READ = "task-run-read"  # checked on the response
    TASK_RUN_CHANGE = "task-run-change"  # its flow run, checked before
    LOGS = "logs"  # every log's flow run
    ARTIFACT = "artifact"  # body's flow run
    BLOCK_BY_NAME = "block-by-name"  # the pool's blocks, and the Secrets of runs the token claimed
    BLOCK_BY_ID = "block-by-id"  # the pool's blocks


@dataclass(frozen=True)
class Call:
    kind: Kind
    pool: str | None = None
    object_id: str | None = None  # a flow run, task run, deployment or block document id
    block_type: str | None = None
    block_name: str | None = None


UUID = r"[0-9a-fA-F-]{36}"
NAME = r"[^/]+"

# (method, pattern over the path after /api/, kind, what the groups are)
_TABLE: list[tuple[str, re.Pattern[str], Kind]] = [
    (m, re.compile(p), k) for m, p, k in [
        ("GET", r"health", Kind.OPEN),
        ("GET", r"hello", Kind.OPEN),
        ("GET", r"admin/version", Kind.OPEN),
        ("GET", r"admin/storage", Kind.OPEN),  # the default result storage's block id (the block: BLOCK_BY_ID)
        ("GET", r"csrf-token", Kind.OPEN),
        ("GET", rf"flows/(?P<id>{UUID})", Kind.FLOW),
        ("GET", rf"block_types/slug/(?P<slug>{NAME})", Kind.SCHEMA),
        ("GET", rf"block_schemas/checksum/(?P<checksum>{NAME})", Kind.SCHEMA),
        ("GET", rf"work_pools/(?P<pool>{NAME})", Kind.POOL),
        ("POST", rf"work_pools/(?P<pool>{NAME})/get_scheduled_flow_runs", Kind.POOL_POLL),
        ("POST", rf"work_pools/(?P<pool>{NAME})/workers/heartbeat", Kind.POOL),
        ("POST", rf"work_pools/(?P<pool>{NAME})/workers/filter", Kind.POOL),
        ("POST", rf"work_pools/(?P<pool>{NAME})/queues/filter", Kind.POOL),
        ("GET", rf"work_pools/(?P<pool>{NAME})/queues/(?P<queue>{NAME})", Kind.POOL),
        ("POST", rf"work_pools/(?P<pool>{NAME})/queues/?", Kind.POOL_QUEUE_CREATE),
        ("GET", rf"deployments/(?P<id>{UUID})", Kind.DEPLOYMENT_READ),
        ("GET", rf"work_queues/(?P<id>{UUID})", Kind.QUEUE_READ),
        ("GET", rf"flow_runs/(?P<id>{UUID})", Kind.RUN_READ),
        ("GET", r"flow_run_states/?", Kind.RUN_STATES_READ),  # a stale claim's restore (swarmsync/claim.py)
        ("PATCH", rf"flow_runs/(?P<id>{UUID})", Kind.RUN_CHANGE),
        ("PATCH", rf"flow_runs/(?P<id>{UUID})/labels", Kind.RUN_CHANGE),
        ("POST", rf"flow_runs/(?P<id>{UUID})/set_state", Kind.RUN_CHANGE),
        ("POST", r"flow_runs/filter", Kind.RUNS_FILTER),
        ("POST", r"task_runs/?", Kind.TASK_RUN_CREATE),
        ("GET", rf"task_runs/(?P<id>{UUID})", Kind.TASK_RUN_READ),
        ("POST", rf"task_runs/(?P<id>{UUID})/set_state", Kind.TASK_RUN_CHANGE),
        ("POST", r"logs/?", Kind.LOGS),
        ("POST", r"artifacts/?", Kind.ARTIFACT),
        ("GET", rf"block_types/slug/(?P<slug>{NAME})/block_documents/name/(?P<name>{NAME})", Kind.BLOCK_BY_NAME),
        ("GET", rf"block_documents/(?P<id>{UUID})", Kind.BLOCK_BY_ID),
    ]
]


def classify(method: str, path: str) -> Call | None:
    """The call `method /api/<path>` is, or None: not a call a worker makes (refused)."""
    path = path.strip("/")
    method = method.upper()
    if any(part in ("", ".", "..") for part in path.split("/")) or "%" in path or "\\" in path:
        return None  # no dot segments, empty segments or escapes: what is checked is what Prefect serves
    for want, pattern, kind in _TABLE:
        if want == method and (found := pattern.fullmatch(path)):
            groups = found.groupdict()
            return Call(kind, pool=groups.get("pool"), object_id=groups.get("id"),
                        block_type=groups.get("slug") if kind is Kind.BLOCK_BY_NAME else None,
                        block_name=groups.get("name"))
    return None


def secret_blocks_of(parameters: dict | None) -> set[str]:
    """The Secret blocks a container-job run reads: its `secrets` and those of its compose services."""
    job = (parameters or {}).get("job") or {}
    names = set((job.get("secrets") or {}).values())
    for service in (job.get("services") or {}).values():
        names |= set((service or {}).get("secrets", {}).values())
    return {str(n) for n in names}


BLOCK_REFERENCE = re.compile(r"prefect\.blocks\.(?P<slug>[a-z0-9-]+)\.(?P<name>[A-Za-z0-9_.-]+)")


def blocks_of_template(template: object) -> tuple[set[tuple[str, str]], set[str]]:
    """The blocks a pool's base job template refers to: (slug, name) of `{{ prefect.blocks.SLUG.NAME }}`
    placeholders, and the ids of `{"$ref": {"block_document_id": ...}}` references."""
    named: set[tuple[str, str]] = set()
    ids: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, dict) and ref.get("block_document_id"):
                ids.add(str(ref["block_document_id"]))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            named.update((m["slug"], m["name"]) for m in BLOCK_REFERENCE.finditer(value))

    walk(template)
    return named, ids
