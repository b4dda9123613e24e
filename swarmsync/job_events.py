"""Prefect events of a job's lifecycle: `swarmsync.job.submitted`, `.started`, `.exited`, `.timed-out`,
`.oom-killed`, `.cancelled`, `.archived`, `.host-lost`.

Emitted like prefect-docker's `prefect.docker.container.*` events (`prefect.events.emit_event`): the
job's flow run is the resource (`prefect.flow-run.<id>`, with `swarmsync.job.id` and, on the final
events, `swarmsync.job.outcome`), and its user, project, pool, host and image are related resources
with a `prefect.resource.role`, so that Prefect's event feed, its events API (`/api/events/filter`)
and Automations (`swarmsync.alerts`) can select them. The exit code, reason and message are the
payload.

Emitting never fails or slows a job: `emit_event` hands the event to Prefect's events worker (a
background thread sending over Prefect's events websocket); anything that goes wrong here is logged
and dropped. A worker host with a token sends them through Core's gateway, which passes only events
about its own pool's runs (`swarmsync.gateway.events`).

    >>> final_event("timeout"), final_event("oom"), final_event(None)
    ('swarmsync.job.timed-out', 'swarmsync.job.oom-killed', 'swarmsync.job.exited')
    >>> [r["prefect.resource.role"] for r in related_resources("ann", "data", "gpu", "w1", "busybox")]
    ['user', 'project', 'pool', 'host', 'image']
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

from swarmsync.owners import DEFAULT_PROJECT, project_of, submitted_by

logger = logging.getLogger("swarmsync.job_events")

PREFIX = "swarmsync.job."
SUBMITTED, STARTED, EXITED = f"{PREFIX}submitted", f"{PREFIX}started", f"{PREFIX}exited"
TIMED_OUT, OOM_KILLED, CANCELLED = f"{PREFIX}timed-out", f"{PREFIX}oom-killed", f"{PREFIX}cancelled"
ARCHIVED, HOST_LOST = f"{PREFIX}archived", f"{PREFIX}host-lost"
ALL = (SUBMITTED, STARTED, EXITED, TIMED_OUT, OOM_KILLED, CANCELLED, ARCHIVED, HOST_LOST)
FINAL = (EXITED, TIMED_OUT, OOM_KILLED, CANCELLED, HOST_LOST)  # the job ended (a host-lost one may retry)
OUTCOME_LABEL = "swarmsync.job.outcome"  # on final events: completed, failed, cancelled, crashed
JOB_LABEL = "swarmsync.job.id"

_BY_REASON = {"timeout": TIMED_OUT, "oom": OOM_KILLED, "cancelled": CANCELLED}


def final_event(reason: str | None) -> str:
    """The event of a container that ended for `reason` (docker_runner's reasons; None: it exited)."""
    return _BY_REASON.get(reason or "", EXITED)


def resource_id(kind: str, name: str) -> str:
    return f"swarmsync.{kind}.{name}"


def related_resources(user: str | None, project: str | None, pool: str | None, host: str | None,
                      image: str | None) -> list[dict[str, str]]:
    """The job's user, project, pool, host and image, each with its role (those known)."""
    related = []
    for role, name in (("user", user), ("project", project or DEFAULT_PROJECT), ("pool", pool), ("host", host),
                       ("image", image)):
        if name:
            related.append({"prefect.resource.id": resource_id(role, name), "prefect.resource.role": role,
                            "prefect.resource.name": name})
    return related


def emit(event: str, job_id: str, *, user: str | None = None, project: str | None = None, pool: str | None = None,
         host: str | None = None, image: str | None = None, outcome: str | None = None,
         exit_code: int | None = None, reason: str | None = None, message: str | None = None,
         name: str | None = None) -> None:
    """Emit one lifecycle event of job `job_id` (its flow run); never raises."""
    try:
        resource = {"prefect.resource.id": f"prefect.flow-run.{job_id}", JOB_LABEL: str(job_id)}
        if name:
            resource["prefect.resource.name"] = name
        if outcome:
            resource[OUTCOME_LABEL] = outcome.lower()
        payload: dict[str, Any] = {"job_id": str(job_id), "exit_code": exit_code, "reason": reason}
        if message:
            payload["message"] = message[:2000]
        emit_event(event, resource=resource, related=related_resources(user, project, pool, host, image),
                   payload=payload)
    except Exception as exc:  # noqa: BLE001 - an event is never worth a job
        logger.warning("could not emit %s for job %s: %s", event, job_id, exc)


def emit_for_run(event: str, run: Any, **fields: Any) -> None:
    """Emit `event` about a Prefect flow run object (its user, project, pool and image read from the run)."""
    try:
        job = (run.parameters or {}).get("job") or {}
        emit(event, str(run.id), user=submitted_by(run), project=project_of(run), pool=run.work_pool_name,
             image=job.get("image") if isinstance(job, dict) else None, name=run.name, **fields)
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not emit %s for flow run %s: %s", event, getattr(run, "id", "?"), exc)
