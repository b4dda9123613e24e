"""Who owns each Secret block SwarmSync makes, who may use it, and who may see its name.

Every Secret block SwarmSync stores (a job's `secret_env`: `swarmsync-secret-*`; a
template's: `swarmsync-template-*`; a schedule's) gets a row in `secret_owners`: its
owner (the API caller; None in embedded mode), its kind (job, template, schedule) and
what it belongs to (job id, template name, schedule name).

The rule (`check_secrets`, called by the API on the resolved spec of every job, template
and schedule before anything is created): a non-admin caller may name in `spec.secrets`

- a block they own, or
- a block of a template or schedule when the spec runs that template's or schedule's job
  unchanged: same image, command, entrypoint, env, secrets, inputs, user, working and
  output folders, network (limits, retries, tags and pull policy may differ). Anyone who
  may submit may run a saved template or schedule as it is, never with a command of their
  own next to its secrets.

Anything else (another user's job secret, a block SwarmSync did not make, a made-up name)
is refused with 403. Admins may use any block. Embedded mode (the Python API on the
server host, no API in between) is trusted and not checked.

Block names are shown only to their owners (and admins): everyone else sees `HIDDEN`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from swarmsync import catalogue
from swarmsync.auth.roles import Forbidden, Principal, Role
from swarmsync.connection import uses_prefect_api
from swarmsync.db import SecretOwner, session_scope
from swarmsync.spec import JobSpec

log = logging.getLogger(__name__)

HIDDEN = "(hidden)"
NEW_SECRET = "(new secret)"  # a `secret_env` value the caller sends now: a block of its own once stored
JOB, TEMPLATE, SCHEDULE = "job", "template", "schedule"

# Fields a caller may change when running someone else's template or schedule with its secrets:
# they bound or label the run, they do not change what runs or what it sees. Marked `free` where
# JobSpec declares them (swarmsync/catalogue.py); a new field is not free unless marked.
FREE_FIELDS = catalogue.free_fields(JobSpec)


def record(blocks: Iterable[str], owner: str | None, kind: str, ref: str | None = None,
           project: str | None = None) -> None:
    """Note `owner` (in `project`) as the owner of these (new or replaced) blocks. Best effort outside the API:
    a database without the table (an embedded store never migrated) only logs a warning."""
    now = datetime.now(UTC)
    try:
        with session_scope() as session:
            for block in blocks:
                row = session.get(SecretOwner, block)
                if row is None:
                    session.add(SecretOwner(block_name=block, owner=owner, kind=kind, ref=ref, project=project,
                                            created_at=now))
                else:
                    row.owner, row.kind, row.ref, row.project, row.created_at = owner, kind, ref, project, now
    except SQLAlchemyError as exc:
        log.warning("could not record the owner of Secret blocks %s: %s", list(blocks), exc)


def attach(blocks: Iterable[str], ref: str) -> None:
    """Set what the blocks belong to (a job's id, known once its run exists)."""
    blocks = list(blocks)
    if not blocks:
        return
    try:
        with session_scope() as session:
            session.execute(update(SecretOwner).where(SecretOwner.block_name.in_(blocks)).values(ref=ref))
    except SQLAlchemyError as exc:
        log.warning("could not record the job of Secret blocks %s: %s", blocks, exc)


def owners(blocks: Iterable[str]) -> dict[str, SecretOwner]:
    blocks = sorted(set(blocks))
    if not blocks:
        return {}
    try:
        with session_scope() as session:
            return {r.block_name: r for r in session.scalars(select(SecretOwner).where(
                SecretOwner.block_name.in_(blocks))).all()}
    except SQLAlchemyError as exc:  # no table (an embedded store never migrated): nobody owns anything
        log.warning("could not read the owners of Secret blocks: %s", exc)
        return {}


def blocks_of(kind: str, ref: str) -> list[str]:
    try:
        with session_scope() as session:
            return list(session.scalars(select(SecretOwner.block_name).where(
                SecretOwner.kind == kind, SecretOwner.ref == ref)).all())
    except SQLAlchemyError as exc:
        log.warning("could not read the Secret blocks of %s %s: %s", kind, ref, exc)
        return []


@uses_prefect_api
def delete_blocks(blocks: Iterable[str]) -> list[str]:
    """Delete these Secret blocks from Prefect and forget their owners; the names deleted."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    blocks = sorted(set(blocks))
    deleted = []
    if not blocks:
        return deleted
    with get_client(sync_client=True) as client:
        for block in blocks:
            try:
                client.delete_block_document(client.read_block_document_by_name(block, "secret").id)
                deleted.append(block)
            except ObjectNotFound:
                pass
    forget(blocks)
    return deleted


def forget(blocks: Iterable[str]) -> None:
    """Forget the owners of these (deleted) blocks."""
    blocks = sorted(set(blocks))
    try:
        with session_scope() as session:
            session.execute(delete(SecretOwner).where(SecretOwner.block_name.in_(blocks)))
    except SQLAlchemyError as exc:
        log.warning("could not forget the owners of Secret blocks %s: %s", blocks, exc)


def delete_secrets_of(kind: str, ref: str) -> list[str]:
    """Delete the Secret blocks made for this job, template or schedule."""
    return delete_blocks(blocks_of(kind, ref))


def _frozen(spec: JobSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude=FREE_FIELDS)


def check_secrets(principal: Principal, spec: JobSpec,
                  saved_job: Callable[[str, str | None], JobSpec | None],
                  context: tuple[str, str] | None = None) -> None:
    """Raise Forbidden (403) unless `principal` may use every Secret block `spec.secrets` names.
    `saved_job(kind, ref)`: the job of a template or schedule as saved now, None if gone
    (`swarmsync.secret_access` reads them). `context`: the (kind, name) of the template or
    schedule being run, when known: its own secrets (whoever made them, also blocks from
    before owners were recorded) serve it when it runs unchanged."""
    if not spec.secrets or principal.role == Role.ADMIN:
        return
    rows = owners(b for b in spec.secrets.values() if b != NEW_SECRET)
    saved: dict[tuple[str, str | None], JobSpec | None] = {}

    def unchanged(kind: str, ref: str | None) -> JobSpec | None:
        if (kind, ref) not in saved:
            job = saved_job(kind, ref)
            saved[(kind, ref)] = job if job is not None and _frozen(job) == _frozen(spec) else None
        return saved[(kind, ref)]

    refused = []
    for var, block in sorted(spec.secrets.items()):
        if block == NEW_SECRET:
            continue
        row = rows.get(block)
        if row is not None and row.owner is not None and row.owner == principal.username:
            continue
        if row is not None and row.kind in (TEMPLATE, SCHEDULE) and unchanged(row.kind, row.ref):
            continue
        running = unchanged(*context) if context else None
        if running is not None and running.secrets.get(var) == block:
            continue
        refused.append(var)
    if refused:
        raise Forbidden(
            f"{principal.username} may not use the secret(s) {', '.join(refused)}: a job may use only Secret blocks "
            "its caller owns, or those of a template or schedule it runs unchanged (same image, command, env, "
            "secrets and files)"
        )


def visible(principal: Principal, blocks: Iterable[str]) -> set[str]:
    """The blocks whose names `principal` may see: their own (admins: all)."""
    blocks = set(blocks)
    if principal.role == Role.ADMIN or not blocks:
        return blocks
    return {b for b, row in owners(blocks).items() if row.owner is not None and row.owner == principal.username}


def hide(secrets: dict[str, str], shown: set[str]) -> dict[str, str]:
    return {var: block if block in shown else HIDDEN for var, block in secrets.items()}


def hide_in_jobs(principal: Principal, jobs: list[dict[str, Any] | None]) -> None:
    """Replace, in place, the block names in these job dicts (`{"secrets": {...}, ...}`) that
    `principal` may not see with HIDDEN; variable names stay."""
    named = [j for j in jobs if isinstance(j, dict) and isinstance(j.get("secrets"), dict) and j["secrets"]]
    if not named:
        return
    shown = visible(principal, {b for j in named for b in j["secrets"].values()})
    for job in named:
        job["secrets"] = hide(job["secrets"], shown)
