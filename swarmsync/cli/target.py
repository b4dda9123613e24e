"""Where the CLI's commands go: Prefect and SwarmSync's database directly (on the server
host), or a SwarmSync API when SWARMSYNC_URL is set or `swarmsync login` stored one. Both
offer the same methods, so each command is written once; the API then applies the
caller's role (`authorize()`) and project rules (`swarmsync.auth.projects`).

The project: each command names it on every call (`project(option)`: `--project`, else
SWARMSYNC_PROJECT, else the one `swarmsync project use` stored; None: new objects go to the
default project and listings show every project of the caller's)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from swarmsync.auth.roles import Principal
from swarmsync.backend import JobBackend
from swarmsync.client import Client, remote_configured, stored_project
from swarmsync.client_settings import client_settings
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.timing import parse_duration

if TYPE_CHECKING:
    from swarmsync import templates
    from swarmsync.jobs import Job
    from swarmsync.remote_jobs import RemoteJob
    from swarmsync.schedule_rows import RecurringJob

# The local (server host) side imports Prefect and the database inside each method: a command that only
# talks to a SwarmSync API must start without them (docs/benchmarks.md, CLI start).

WHEN = ("cron", "every", "rrule", "timezone", "start")


def project(option: str | None = None, every: bool = False) -> str | None:
    """The project a command works in: `--project`, else SWARMSYNC_PROJECT, else the stored one (None:
    the default project for new objects, all of the caller's for listings; `every`: a listing of all)."""
    if every:
        return None
    return option or client_settings().project or stored_project()


def client() -> Client:
    """The API client of the stored login or SWARMSYNC_URL; the command names the project on each call."""
    api = Client.from_settings()
    api.project = None  # not its default: `project()` above already chose, and None must mean "all"
    return api


def job_backend() -> JobBackend:
    """Jobs: `swarmsync.jobs.LocalJobs` (Prefect directly) or a `Client` of the API."""
    if remote_configured():
        return client()
    from swarmsync.jobs import LocalJobs

    return LocalJobs()


def hibernator() -> LocalHibernator | RemoteHibernator:
    """Schedules and templates: `swarmsync.deployments.schedules`/`templates` here, or the API's."""
    return RemoteHibernator(client()) if remote_configured() else LocalHibernator()


def project_admin() -> LocalProjects | RemoteProjects:
    """Projects and their members: `swarmsync.auth.projects` as the local administrator, or the API's."""
    return RemoteProjects(client()) if remote_configured() else LocalProjects(local_principal())


def local_principal() -> Principal:
    """The server host's administrator, for users and tokens written straight into the database."""
    from swarmsync.db import migrate

    migrate()
    return Principal.local()


def template_row(stored: str, template: templates.JobTemplate) -> dict[str, Any]:
    """A saved template as `GET /templates` shows it: its job fields, name in its project, project, owner."""
    from swarmsync import templates

    return {**template.job_fields(), "name": templates.template_name(stored, template),
            "project": template.project or DEFAULT_PROJECT, "owner": template.owner}


class LocalHibernator:
    """Schedules and templates through `swarmsync.deployments.schedules` and `swarmsync.templates`."""

    def create(self, name: str, image: str | None = None, command: Any = None, *, template: str | None = None,
               overlap: str = "allow", pool: str | None = None, queue: str | None = None,
               secret_env: dict[str, str] | None = None, paused: bool = False, project: str | None = None,
               **options: Any) -> RecurringJob:
        from swarmsync.deployments import schedules

        return schedules.create(name, image, command, template=template, overlap=overlap, pool=pool, queue=queue,
                                secret_env=secret_env, paused=paused, project=project, **options)

    def add(self, name: str, project: str | None = None, **when_and_overrides: Any) -> RecurringJob:
        from swarmsync.deployments import schedules

        return schedules.add(name, project=project, **when_and_overrides)

    def list_schedules(self, project: str | None = None) -> list[RecurringJob]:
        from swarmsync.deployments import schedules

        return schedules.list_schedules([project] if project else None)

    def pause(self, name: str, project: str | None = None) -> None:
        from swarmsync.deployments import schedules

        schedules.pause(name, project)

    def resume(self, name: str, project: str | None = None) -> None:
        from swarmsync.deployments import schedules

        schedules.resume(name, project)

    def delete(self, name: str, project: str | None = None) -> None:
        from swarmsync.deployments import schedules

        schedules.delete(name, project)

    def run(self, name: str, project: str | None = None) -> Job:
        from swarmsync.deployments import schedules

        return schedules.run(name, project=project)

    def save_template(self, name: str, image: str, command: Any = None, *,
                      secret_env: dict[str, str] | None = None, project: str | None = None, **options: Any) -> None:
        from swarmsync import templates

        templates.save_template(name, image, command, secret_env=secret_env, project=project, **options)

    def delete_template(self, name: str, project: str | None = None) -> None:
        from swarmsync import templates

        templates.delete_template(name, project)

    def list_templates(self, project: str | None = None) -> dict[str, dict[str, Any]]:
        """By stored name (`<project>--<name>`), each with its `name`, `project` and `owner`."""
        from swarmsync import templates

        return {stored: template_row(stored, t)
                for stored, t in templates.list_templates([project] if project else None).items()}


class RemoteHibernator:
    """The same methods as `LocalHibernator`, through the API's `/schedules` and `/templates`."""

    def __init__(self, client: Client):
        self.client = client

    def create(self, name: str, image: str | None = None, command: Any = None, *, template: str | None = None,
               overlap: str = "allow", pool: str | None = None, queue: str | None = None,
               secret_env: dict[str, str] | None = None, paused: bool = False, project: str | None = None,
               **options: Any) -> RecurringJob:
        from swarmsync.schedule_rows import RecurringJob

        when = {k: options.pop(k) for k in WHEN if k in options}
        body: dict[str, Any] = {"overlap": overlap, "pool": pool, "queue": queue, "paused": paused,
                                "secret_env": secret_env or {}, **{k: v for k, v in when.items() if v is not None}}
        if template and command is None and not options:
            body["template"] = template
            return RecurringJob.from_dict(self.client.create_schedule(name, project=project, **body))
        spec = self.client.job_spec(image, command, template, project=project, **options)
        return RecurringJob.from_dict(self.client.create_schedule(name, spec, project=project, **body))

    def add(self, name: str, project: str | None = None, **when_and_overrides: Any) -> RecurringJob:
        from swarmsync.schedule_rows import RecurringJob

        return RecurringJob.from_dict(self.client.add_schedule(name, project=project, **when_and_overrides))

    def list_schedules(self, project: str | None = None) -> list[RecurringJob]:
        from swarmsync.schedule_rows import RecurringJob

        return [RecurringJob.from_dict(row) for row in self.client.schedules(project)]

    def pause(self, name: str, project: str | None = None) -> None:
        self.client.change_schedule(name, "pause", project)

    def resume(self, name: str, project: str | None = None) -> None:
        self.client.change_schedule(name, "resume", project)

    def delete(self, name: str, project: str | None = None) -> None:
        self.client.change_schedule(name, "delete", project)

    def run(self, name: str, project: str | None = None) -> RemoteJob:
        return self.client.run_schedule(name, project)

    def save_template(self, name: str, image: str, command: Any = None, *,
                      secret_env: dict[str, str] | None = None, project: str | None = None, **options: Any) -> None:
        self.client.save_template(name, self.client.build_spec(image, command, **options), secret_env, project=project)

    def delete_template(self, name: str, project: str | None = None) -> None:
        self.client.delete_template(name, project)

    def list_templates(self, project: str | None = None) -> dict[str, dict[str, Any]]:
        return self.client.templates(project)


class LocalProjects:
    """Projects and members through `swarmsync.auth.projects`, as `principal` (the server host's administrator).
    Rows are dicts shaped as the API's (`GET /projects`, `GET /projects/{name}/members`)."""

    def __init__(self, principal: Principal):
        self.principal = principal

    def list_projects(self) -> list[dict[str, Any]]:
        from swarmsync.auth import projects

        return [asdict(p) for p in projects.list_projects(self.principal)]

    def exists(self, name: str) -> bool:
        from swarmsync.auth import projects

        return projects.exists(name)

    def create(self, name: str, description: str = "") -> dict[str, Any]:
        from swarmsync.auth import projects

        return asdict(projects.create_project(self.principal, name, description))

    def delete(self, name: str) -> None:
        from swarmsync.auth import projects

        projects.delete_project(self.principal, name)

    def members(self, name: str) -> list[dict[str, Any]]:
        from swarmsync.auth import projects

        return [asdict(m) for m in projects.list_members(self.principal, name)]

    def set_member(self, name: str, username: str, role: str) -> dict[str, Any]:
        from swarmsync.auth import projects

        return asdict(projects.set_member(self.principal, name, username, role))

    def remove_member(self, name: str, username: str) -> None:
        from swarmsync.auth import projects

        projects.remove_member(self.principal, name, username)

    def usage(self, by: str = "project", project: str | None = None, user: str | None = None,
              since: str | None = None) -> list[dict[str, Any]]:
        from swarmsync import usage_report

        start = datetime.now(UTC) - parse_duration(since) if since else None
        return [asdict(s) for s in usage_report.summarize(self.principal, by, project, user, start)]

    def budget(self, name: str) -> dict[str, Any]:
        from swarmsync import usage_report
        from swarmsync.auth import projects

        if not projects.exists(name):
            raise projects.ProjectNotFound(f"no project named {name!r}; see 'swarmsync project list'")
        _, resets = usage_report.month_bounds()
        return {"project": name, "cpu_hours": usage_report.budget(name),
                "used_cpu_hours": usage_report.month_cpu_seconds(name) / 3600, "resets": resets.isoformat()}

    def set_budget(self, name: str, cpu_hours: float | None) -> dict[str, Any]:
        from swarmsync import usage_report

        usage_report.set_budget(self.principal, name, cpu_hours)
        return self.budget(name)


class RemoteProjects:
    """The same methods as `LocalProjects`, through the API's `/projects`."""

    def __init__(self, client: Client):
        self.client = client

    def list_projects(self) -> list[dict[str, Any]]:
        return self.client.projects()

    def exists(self, name: str) -> bool:
        """Whether the caller is a member of `name` (admins: whether it exists)."""
        return any(p["name"] == name for p in self.client.projects())

    def create(self, name: str, description: str = "") -> dict[str, Any]:
        return self.client.create_project(name, description)

    def delete(self, name: str) -> None:
        self.client.delete_project(name)

    def members(self, name: str) -> list[dict[str, Any]]:
        return self.client.members(name)

    def set_member(self, name: str, username: str, role: str) -> dict[str, Any]:
        return self.client.set_member(name, username, role)

    def remove_member(self, name: str, username: str) -> None:
        self.client.remove_member(name, username)

    def usage(self, by: str = "project", project: str | None = None, user: str | None = None,
              since: str | None = None) -> list[dict[str, Any]]:
        return self.client.usage(by, project, user, since)

    def budget(self, name: str) -> dict[str, Any]:
        return self.client.budget(name)

    def set_budget(self, name: str, cpu_hours: float | None) -> dict[str, Any]:
        return self.client.set_budget(name, cpu_hours)
