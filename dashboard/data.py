"""Data access of the dashboard: plain functions over `swarmsync.Client` (the SwarmSync API
with the logged-in user's token). Pages call these and only render; the API does the
role checks and the audit, the core does the work.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.client.schemas.objects import FlowRun
from pydantic import ValidationError

from swarmsync.client import APIError, Client, RemoteJob
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError

FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
SECRET_MASK = "***"


def api_url() -> str:
    """The SwarmSync API the dashboard talks to."""
    settings = get_settings()
    if settings.dashboard_api_url or settings.url:
        return (settings.dashboard_api_url or settings.url or "").rstrip("/")
    host = settings.api_bind_host
    if host in ("0.0.0.0", "::"):  # bound to every address: reach it on this machine
        host = "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def prefect_ui_url() -> str:
    """The Prefect UI, for links to each run: the option, else the Prefect API URL without `/api`."""
    from dashboard.options import load_options

    configured = load_options().prefect_ui_url
    return (configured or get_settings().prefect_api_url.removesuffix("/").removesuffix("/api")).rstrip("/")


# --- sessions ----------------------------------------------------------------------------
def login(username: str, password: str, url: str | None = None) -> tuple[Client, dict[str, Any]]:
    """Log in to the API; returns the client (holding the session token) and `/me`."""
    client = Client.login(url or api_url(), username, password)
    return client, client.me()


def logout(client: Client) -> None:
    try:
        client.logout()
    except (APIError, OSError):
        pass  # an expired session is logged out anyway
    finally:
        client.http.close()


def may(me: dict[str, Any] | None, permission: str) -> bool:
    """Whether the logged-in user's role grants `permission` (e.g. 'jobs:submit'), per `/me`."""
    return bool(me) and permission in me.get("permissions", [])


# --- jobs ----------------------------------------------------------------------------------
def _spec_of(run: FlowRun) -> dict[str, Any]:
    return dict((run.parameters or {}).get("job") or {})


def _duration(run: FlowRun) -> float | None:
    if run.start_time and run.end_time:
        return (run.end_time - run.start_time).total_seconds()
    return run.total_run_time.total_seconds() if run.total_run_time and run.end_time else None


def job_row(run: FlowRun) -> dict[str, Any]:
    spec = _spec_of(run)
    command = spec.get("command")
    return {
        "id": str(run.id),
        "state": run.state.name if run.state else "Unknown",
        "image": spec.get("image", ""),
        "command": " ".join(command) if isinstance(command, list) else (command or ""),
        "tags": ", ".join(run.tags or []),
        "queue": run.work_queue_name or "",
        "created": run.created,
        "scheduled": run.expected_start_time,
        "started": run.start_time,
        "ended": run.end_time,
        "duration_s": _duration(run),
    }


def list_jobs(client: Client, limit: int = 200, state: str | None = None) -> list[FlowRun]:
    return client.list_jobs(limit=limit, state=state)


def filter_rows(rows: list[dict[str, Any]], states: list[str] | None = None, image: str = "", tag: str = "",
                since: datetime | None = None) -> list[dict[str, Any]]:
    """Rows whose state is one of `states`, image contains `image`, tags contain `tag`, created after `since`."""
    out = []
    for row in rows:
        if states and row["state"] not in states:
            continue
        if image and image.lower() not in row["image"].lower():
            continue
        if tag and tag.lower() not in row["tags"].lower():
            continue
        if since and row["created"] and row["created"] < since:
            continue
        out.append(row)
    return out


def get_job(client: Client, job_id: str) -> RemoteJob:
    return client.get_job(job_id)


def masked_spec(run: FlowRun) -> dict[str, Any]:
    """The job's spec as submitted, with secret references (and any value) masked."""
    spec = _spec_of(run)
    if spec.get("secrets"):
        spec["secrets"] = {name: SECRET_MASK for name in spec["secrets"]}
    for item in spec.get("inputs") or []:
        if isinstance(item, dict) and item.get("content"):
            item["content"] = f"<{len(item['content'])} bytes, base64>"
    return spec


def state_history(job: RemoteJob) -> list[dict[str, Any]]:
    return [{"time": ts, "type": kind, "state": name, "message": msg or ""} for ts, kind, name, msg in job.states()]


def log_tail(job: RemoteJob, lines: int = 200) -> str:
    return "\n".join(message for _ts, _name, message in job.logs()[-lines:])


def manifest(job: RemoteJob) -> dict[str, Any] | None:
    """The archive manifest, or None while the job has not been archived."""
    try:
        return job.result().manifest
    except LookupError:
        return None


def checksums(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"file": name, "bytes": info.get("size"), "sha256": info.get("sha256")}
            for name, info in sorted((manifest.get("files") or {}).items())]


def download(client: Client, job_id: str, name: str) -> bytes:
    """An archived file as the API serves it: `output.txt`, `stdout.txt`, `stderr.txt` or `files.tar.gz`."""
    return client.read_archive_file(job_id, name)


def cancel(job: RemoteJob) -> None:
    job.cancel()


def rerun(client: Client, run: FlowRun) -> RemoteJob:
    """Submit the same spec again, to the same pool and queue."""
    spec = JobSpec.model_validate(_spec_of(run))
    return client.submit(spec, pool=run.work_pool_name, queue=run.work_queue_name)


def run_url(job_id: str) -> str:
    return f"{prefect_ui_url()}/runs/flow-run/{job_id}"


# --- submission --------------------------------------------------------------------------
@dataclass
class SubmitForm:
    """What the submit form collects, as text, before it becomes a JobSpec."""

    image: str = ""
    command: str = ""
    shell: bool = True
    env: str = ""  # NAME=value per line
    secret_env: str = ""  # NAME=value per line, stored as Prefect Secret blocks
    cpu: str = ""
    memory: str = ""
    timeout: str = ""
    pids_limit: str = ""
    output_dir: str = ""
    tags: str = ""  # comma separated
    pool: str = ""
    queue: str = ""
    at: datetime | None = None


def _pairs(text: str, field: str, errors: dict[str, str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            errors[field] = f"line {number}: write NAME=value"
            return {}
        pairs[name.strip()] = value
    return pairs


def _number(text: str, field: str, errors: dict[str, str], kind: type = float) -> float | int | None:
    if not text.strip():
        return None
    try:
        return kind(text.strip())
    except ValueError:
        errors[field] = f"{text.strip()!r} is not a {'whole ' if kind is int else ''}number"
        return None


def build_submission(form: SubmitForm) -> tuple[JobSpec | None, dict[str, str], dict[str, str]]:
    """(spec, secret values, errors by form field). Errors come from JobSpec's own validation."""
    errors: dict[str, str] = {}
    options: dict[str, Any] = {
        "env": _pairs(form.env, "env", errors),
        "cpu": _number(form.cpu, "cpu", errors),
        "timeout": _number(form.timeout, "timeout", errors),
        "pids_limit": _number(form.pids_limit, "pids_limit", errors, int),
        "memory": form.memory.strip() or None,
        "output_dir": form.output_dir.strip() or None,
        "tags": [t.strip() for t in form.tags.split(",") if t.strip()],
    }
    secrets = _pairs(form.secret_env, "secret_env", errors)
    if not form.image.strip():
        errors["image"] = "an image is required, e.g. busybox or ghcr.io/org/app:1.2"
    command: list[str] | str | None = form.command.strip() or None
    if command and not form.shell:
        import shlex

        try:
            command = shlex.split(command)
        except ValueError as exc:
            errors["command"] = f"cannot split the command: {exc}"
    if form.at is not None and form.at < datetime.now(UTC) - timedelta(minutes=1):
        errors["at"] = "the start time is in the past"
    try:
        spec = JobSpec(image=form.image.strip() or "x", command=command,
                       **{k: v for k, v in options.items() if v not in (None, [], {})})
    except (ValidationError, JobSpecError) as exc:
        errors.update(_field_errors(exc))
        spec = None
    return (None if errors else spec), secrets, errors


def _field_errors(exc: ValidationError | JobSpecError) -> dict[str, str]:
    if isinstance(exc, JobSpecError):
        return {"image": str(exc)}
    out: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "image"
        message = err["msg"].removeprefix("Value error, ")
        out.setdefault(field, message)
    return out


def submit(client: Client, spec: JobSpec, secrets: dict[str, str], pool: str = "", queue: str = "",
           at: datetime | None = None) -> RemoteJob:
    return client.submit(spec, secret_env=secrets or None, pool=pool or None, queue=queue or None, at=at)


# --- overview ------------------------------------------------------------------------------
def health(client: Client) -> list[dict[str, Any]]:
    return client.health_checks()


def running_now(runs: list[FlowRun]) -> list[dict[str, Any]]:
    return [job_row(r) for r in runs if r.state and r.state.type.value in ("RUNNING", "PENDING", "CANCELLING")]


def jobs_per_hour(runs: list[FlowRun]) -> list[dict[str, Any]]:
    """[{hour, state, jobs}] of finished jobs, by the hour they ended and their final state."""
    counts: Counter[tuple[datetime, str]] = Counter()
    for run in runs:
        if run.state and run.state.type.value in FINAL_STATES and run.end_time:
            end = run.end_time.astimezone(UTC)
            hour = datetime(end.year, end.month, end.day, end.hour, tzinfo=UTC)
            counts[(hour, run.state.type.value.title())] += 1
    return [{"hour": hour, "state": state, "jobs": n} for (hour, state), n in sorted(counts.items())]


def durations(runs: list[FlowRun]) -> list[float]:
    return [d for r in runs if r.state and r.state.type.value in FINAL_STATES and (d := _duration(r)) is not None]


def success_rate(runs: list[FlowRun]) -> float | None:
    finished = [r for r in runs if r.state and r.state.type.value in FINAL_STATES]
    if not finished:
        return None
    return sum(r.state.type.value == "COMPLETED" for r in finished) / len(finished)


def lateness(runs: list[FlowRun]) -> list[float]:
    """Seconds between when scheduled jobs should have started and when they did."""
    return [max(0.0, (r.start_time - r.expected_start_time).total_seconds())
            for r in runs if r.start_time and r.expected_start_time]


# --- workers and admin ---------------------------------------------------------------------
def pools(client: Client) -> list[dict[str, Any]]:
    return client.pools()


def workers(client: Client) -> dict[str, Any]:
    return client.workers()


def users(client: Client) -> list[dict[str, Any]]:
    return client.users()


def tokens(client: Client) -> list[dict[str, Any]]:
    return client.tokens(everyone=True)


def audit(client: Client, limit: int = 200) -> list[dict[str, Any]]:
    return client.audit(limit=limit)


# --- schedules ---------------------------------------------------------------------------
def schedules(client: Client) -> list[dict[str, Any]]:
    """One row per named schedule: when it runs, overlap policy, next runs, paused or not."""
    rows = []
    for item in client.schedules():
        rows.append({
            "name": item["name"],
            "when": "; ".join(s["description"] for s in item["schedules"]),
            "overlap": item["overlap"],
            "paused": item["paused"],
            "next runs": ", ".join(str(t)[:16] for t in item["next_runs"]) or "-",
            "image": item["job"].get("image", ""),
            "pool": item["pool"] or "",
        })
    return rows
