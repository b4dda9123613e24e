"""Where the CLI's commands go: Prefect and SwarmSync's database directly (on the server
host), or a SwarmSync API when SWARMSYNC_URL is set or `swarmsync login` stored one. Both
offer the same methods, so each command is written once; the API then applies the
caller's role (`authorize()`)."""

from __future__ import annotations

from typing import Any

from swarmsync import templates
from swarmsync.auth.roles import Principal
from swarmsync.backend import JobBackend
from swarmsync.client import Client, RemoteJob, remote_configured
from swarmsync.db import migrate
from swarmsync.deployments import schedules
from swarmsync.deployments.schedules import RecurringJob
from swarmsync.jobs import Job, LocalJobs, build_spec

WHEN = ("cron", "every", "rrule", "timezone", "start")


def job_backend() -> JobBackend:
    """Jobs: `swarmsync.jobs.LocalJobs` (Prefect directly) or a `Client` of the API."""
    return Client.from_settings() if remote_configured() else LocalJobs()


def hibernator() -> LocalHibernator | RemoteHibernator:
    """Schedules and templates: `swarmsync.deployments.schedules`/`templates` here, or the API's."""
    return RemoteHibernator(Client.from_settings()) if remote_configured() else LocalHibernator()


def local_principal() -> Principal:
    """The server host's administrator, for users and tokens written straight into the database."""
    migrate()
    return Principal.local()


class LocalHibernator:
    """Schedules and templates through `swarmsync.deployments.schedules` and `swarmsync.templates`."""

    def create(self, name: str, image: str | None = None, command: Any = None, *, template: str | None = None,
               overlap: str = "allow", pool: str | None = None, queue: str | None = None,
               secret_env: dict[str, str] | None = None, paused: bool = False, **options: Any) -> RecurringJob:
        return schedules.create(name, image, command, template=template, overlap=overlap, pool=pool, queue=queue,
                                secret_env=secret_env, paused=paused, **options)

    def add(self, name: str, **when_and_overrides: Any) -> RecurringJob:
        return schedules.add(name, **when_and_overrides)

    def list_schedules(self) -> list[RecurringJob]:
        return schedules.list_schedules()

    def pause(self, name: str) -> None:
        schedules.pause(name)

    def resume(self, name: str) -> None:
        schedules.resume(name)

    def delete(self, name: str) -> None:
        schedules.delete(name)

    def run(self, name: str) -> Job:
        return schedules.run(name)

    def save_template(self, name: str, image: str, command: Any = None, *,
                      secret_env: dict[str, str] | None = None, **options: Any) -> None:
        templates.save_template(name, image, command, secret_env=secret_env, **options)

    def delete_template(self, name: str) -> None:
        templates.delete_template(name)

    def list_templates(self) -> dict[str, dict[str, Any]]:
        return {name: template.job_fields() for name, template in templates.list_templates().items()}


class RemoteHibernator:
    """The same methods as `LocalHibernator`, through the API's `/schedules` and `/templates`."""

    def __init__(self, client: Client):
        self.client = client

    def create(self, name: str, image: str | None = None, command: Any = None, *, template: str | None = None,
               overlap: str = "allow", pool: str | None = None, queue: str | None = None,
               secret_env: dict[str, str] | None = None, paused: bool = False, **options: Any) -> RecurringJob:
        when = {k: options.pop(k) for k in WHEN if k in options}
        body: dict[str, Any] = {"overlap": overlap, "pool": pool, "queue": queue, "paused": paused,
                                "secret_env": secret_env or {}, **{k: v for k, v in when.items() if v is not None}}
        if template and command is None and not options:
            body["template"] = template
            return RecurringJob.from_dict(self.client.create_schedule(name, **body))
        spec = self.client.job_spec(image, command, template, **options)
        return RecurringJob.from_dict(self.client.create_schedule(name, spec, **body))

    def add(self, name: str, **when_and_overrides: Any) -> RecurringJob:
        return RecurringJob.from_dict(self.client.add_schedule(name, **when_and_overrides))

    def list_schedules(self) -> list[RecurringJob]:
        return [RecurringJob.from_dict(row) for row in self.client.schedules()]

    def pause(self, name: str) -> None:
        self.client.change_schedule(name, "pause")

    def resume(self, name: str) -> None:
        self.client.change_schedule(name, "resume")

    def delete(self, name: str) -> None:
        self.client.change_schedule(name, "delete")

    def run(self, name: str) -> RemoteJob:
        return self.client.run_schedule(name)

    def save_template(self, name: str, image: str, command: Any = None, *,
                      secret_env: dict[str, str] | None = None, **options: Any) -> None:
        self.client.save_template(name, build_spec(image, command, **options), secret_env)

    def delete_template(self, name: str) -> None:
        self.client.delete_template(name)

    def list_templates(self) -> dict[str, dict[str, Any]]:
        return self.client.templates()
