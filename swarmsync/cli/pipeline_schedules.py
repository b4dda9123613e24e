"""Pipeline schedules for the CLI: `swarmsync.deployments.pipeline_schedules` on the server host, or the
API's /pipelines/schedules (a stored login or SWARMSYNC_URL); both answer in the API's shape."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from swarmsync.cli.target import client
from swarmsync.client import remote_configured


class LocalPipelineSchedules:
    """Here, as the server host (only the pools' policies are checked)."""

    def create(self, name: str, pipeline: dict[str, Any], *, every: str | None, cron: str | None,
               timezone: str | None, project: str | None) -> dict[str, Any]:
        from swarmsync.deployments import pipeline_schedules

        made = pipeline_schedules.create(name, pipeline, every=every, cron=cron, timezone=timezone, project=project)
        return {**asdict(made), "steps": made.steps}

    def list(self, project: str | None) -> list[dict[str, Any]]:
        from swarmsync.deployments import pipeline_schedules

        return [{**asdict(s), "steps": s.steps}
                for s in pipeline_schedules.list_schedules([project] if project else None)]

    def change(self, name: str, action: str, project: str | None) -> None:
        """`action`: pause, resume or delete."""
        from swarmsync.deployments import pipeline_schedules

        getattr(pipeline_schedules, action)(name, project)

    def delete(self, name: str, project: str | None) -> None:
        self.change(name, "delete", project)


class RemotePipelineSchedules:
    """Through the API, as the logged-in user (every step admitted for them)."""

    def __init__(self) -> None:
        self.api = client()

    def create(self, name: str, pipeline: dict[str, Any], *, every: str | None, cron: str | None,
               timezone: str | None, project: str | None) -> dict[str, Any]:
        return self.api.schedule_pipeline(name, pipeline, every=every, cron=cron, timezone=timezone, project=project)

    def list(self, project: str | None) -> list[dict[str, Any]]:
        return self.api.pipeline_schedules(project)

    def change(self, name: str, action: str, project: str | None) -> None:
        """`action`: pause, resume or delete."""
        self.api.change_pipeline_schedule(name, action, project)

    def delete(self, name: str, project: str | None) -> None:
        self.change(name, "delete", project)


def pipeline_schedules() -> LocalPipelineSchedules | RemotePipelineSchedules:
    return RemotePipelineSchedules() if remote_configured() else LocalPipelineSchedules()
