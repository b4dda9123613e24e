"""The `retention` flow: removes archives, archive index rows and leftover containers of
this SwarmSync installation older than a cut-off, and reports what it removed as a
markdown artifact (key `swarmsync-retention`). Deployed daily by `prefect.yaml`.

The logic lives in `swarmsync/retention.py`; this file wires it into Prefect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact

from swarmsync import retention as policy


@task(name="remove-expired-archives", persist_result=False)
async def remove_expired_archives(cutoff: datetime, dry_run: bool) -> list[policy.Removal]:
    removed = await anyio.to_thread.run_sync(policy.expired_archives, cutoff, dry_run)
    get_run_logger().info("%d archive item(s) older than %s", len(removed), cutoff.isoformat())
    return removed


@task(name="remove-leftover-containers", persist_result=False)
async def remove_leftover_containers(cutoff: datetime, dry_run: bool) -> list[policy.Removal]:
    removed = await anyio.to_thread.run_sync(policy.leftover_containers, cutoff, dry_run)
    get_run_logger().info("%d leftover container(s) older than %s", len(removed), cutoff.isoformat())
    return removed


@flow(name="retention", persist_result=False)
async def retention(max_age_days: float = 30.0, cutoff: datetime | None = None, dry_run: bool = False) -> dict:
    """Remove what is older than `max_age_days` (or than `cutoff`, when given).

    With `dry_run`, only report what would be removed.
    """
    if max_age_days < 0:
        raise ValueError(f"max_age_days must be zero or more, got {max_age_days}")
    cutoff = (cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)) if cutoff else (
        datetime.now(UTC) - timedelta(days=max_age_days))
    removed = await remove_expired_archives(cutoff, dry_run)
    removed += await remove_leftover_containers(cutoff, dry_run)
    await acreate_markdown_artifact(
        key="swarmsync-retention", markdown=policy.report_markdown(cutoff, removed, dry_run),
        description="SwarmSync retention report",
    )
    return {
        "cutoff": cutoff.isoformat(),
        "dry_run": dry_run,
        "removed": [{"kind": r.kind, "name": r.name, "at": r.at.isoformat()} for r in removed],
    }
