"""Where the CLI's commands go: Prefect directly (on the server host), or a SwarmSync API
when SWARMSYNC_URL is set or `swarmsync login` stored one. Both offer the same names, so
each command is written once; the API then applies the caller's role (`authorize()`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from swarmsync import archive, jobs
from swarmsync.client import Client, remote_configured

LOCAL = SimpleNamespace(
    submit=jobs.submit, submit_many=jobs.submit_many, list_jobs=jobs.list_jobs, get_job=jobs.get_job,
    read_archive_file=archive.read_archive_file,
)

WHEN = ("cron", "every", "rrule", "timezone", "start")


def job_backend() -> Any:
    return Client.from_settings() if remote_configured() else LOCAL


def hibernator() -> Any:
    """Schedules and templates: `swarmsync.deployments.schedules`/`templates` here, or the API's."""
    if remote_configured():
        return RemoteHibernator(Client.from_settings())
    from swarmsync import templates
    from swarmsync.deployments import schedules

    return SimpleNamespace(
        create=schedules.create, add=schedules.add, list_schedules=schedules.list_schedules,
        pause=schedules.pause, resume=schedules.resume, delete=schedules.delete, run=schedules.run,
        save_template=templates.save_template, delete_template=templates.delete_template,
        list_templates=lambda: {n: t.job_fields() for n, t in templates.list_templates().items()},
    )


class RemoteHibernator:
    """The same calls as `swarmsync.deployments.schedules`/`templates`, through `/schedules` and `/templates`."""

    def __init__(self, client: Client):
        self.client = client

    def create(self, name: str, image: str | None = None, command: Any = None, *, template: str | None = None,
               overlap: str = "allow", pool: str | None = None, queue: str | None = None,
               secret_env: dict[str, str] | None = None, paused: bool = False, **options: Any):
        from swarmsync.deployments.schedules import RecurringJob

        when = {k: options.pop(k) for k in WHEN if k in options}
        body: dict[str, Any] = {"overlap": overlap, "pool": pool, "queue": queue, "paused": paused,
                                "secret_env": secret_env or {}, **{k: v for k, v in when.items() if v is not None}}
        if template and command is None and not options:
            body["template"] = template
            return RecurringJob.from_dict(self.client.create_schedule(name, **body))
        spec = self.client.job_spec(image, command, template, **options)
        return RecurringJob.from_dict(self.client.create_schedule(name, spec, **body))

    def add(self, name: str, **when_and_overrides: Any):
        from swarmsync.deployments.schedules import RecurringJob

        return RecurringJob.from_dict(self.client.add_schedule(name, **when_and_overrides))

    def list_schedules(self) -> list:
        from swarmsync.deployments.schedules import RecurringJob

        return [RecurringJob.from_dict(row) for row in self.client.schedules()]

    def pause(self, name: str) -> None:
        self.client.change_schedule(name, "pause")

    def resume(self, name: str) -> None:
        self.client.change_schedule(name, "resume")

    def delete(self, name: str) -> None:
        self.client.change_schedule(name, "delete")

    def run(self, name: str):
        return self.client.run_schedule(name)

    def save_template(self, name: str, image: str, command: Any = None, *,
                      secret_env: dict[str, str] | None = None, **options: Any) -> None:
        self.client.save_template(name, jobs.build_spec(image, command, **options), secret_env)

    def delete_template(self, name: str) -> None:
        self.client.delete_template(name)

    def list_templates(self) -> dict[str, dict[str, Any]]:
        return self.client.templates()
