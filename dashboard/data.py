"""Data access of the dashboard: plain functions over `swarmsync.Client` (the SwarmSync API
with the logged-in user's token). Pages call these and only render; the API does the
role checks and the audit, the core does the work.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun

from swarmsync.client import APIError, Client, RemoteJob
from swarmsync.owners import submitted_by
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec

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
    from swarmsync.dashboard.options import load_options

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
        "user": submitted_by(run) or "",
        "tags": ", ".join(run.tags or []),
        "queue": run.work_queue_name or "",
        "created": run.created,
        "scheduled": run.expected_start_time,
        "started": run.start_time,
        "ended": run.end_time,
        "duration_s": _duration(run),
    }


def list_jobs(client: Client, limit: int = 200, state: str | None = None, user: str | None = None) -> list[FlowRun]:
    """The newest jobs; `user`: only those this user submitted (filtered by the API, so older ones count too)."""
    return client.list_jobs(limit=limit, state=state, user=user or None)


def filter_rows(rows: list[dict[str, Any]], states: list[str] | None = None, image: str = "", tag: str = "",
                since: datetime | None = None, user: str = "") -> list[dict[str, Any]]:
    """Rows whose state is one of `states`, image contains `image`, tags contain `tag`, created after
    `since`, submitted by `user` (exactly)."""
    out = []
    for row in rows:
        if user and row.get("user") != user:
            continue
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
        if isinstance(item, dict) and item.get("content_b64"):
            item["content_b64"] = f"<{len(item['content_b64'])} characters of base64>"
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


# --- submission (the form itself is dashboard/forms.py) ---------------------------------
def submit(client: Client, spec: JobSpec, secrets: dict[str, str], pool: str = "", queue: str = "",
           at: datetime | None = None) -> RemoteJob:
    return client.submit(spec, secret_env=secrets or None, pool=pool or None, queue=queue or None, at=at)


SCHEDULE_KINDS = ("cron", "every", "rrule")
OVERLAPS = ("allow", "skip", "queue")
# API field (or a word of the API's message) -> the submit form's field for its error
SCHEDULE_FIELDS = {"name": "schedule_name", "cron": "schedule_value", "every": "schedule_value",
                   "rrule": "schedule_value", "timezone": "timezone", "overlap": "overlap"}
SCHEDULE_WORDS = {"time zone": "timezone", "timezone": "timezone", "cron": "schedule_value", "rrule": "schedule_value",
                  "interval": "schedule_value", "duration": "schedule_value", "every": "schedule_value",
                  "in the future": "schedule_value", "name": "schedule_name", "already": "schedule_name",
                  "overlap": "overlap"}


def create_schedule(client: Client, name: str, spec: JobSpec, secrets: dict[str, str], kind: str, when: str,
                    timezone: str, overlap: str, pool: str = "", queue: str = "") -> dict[str, Any]:
    """A recurring job through the API's /schedules (`kind`: cron, every or rrule; `when`: its text).
    APIError when refused: see `form_errors` for putting its message beside a field."""
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {SCHEDULE_KINDS}")
    return client.create_schedule(name.strip(), spec, **{kind: when.strip()}, timezone=timezone.strip() or None,
                                  overlap=overlap, pool=pool or None, queue=queue or None,
                                  secret_env=secrets or {})


def save_template(client: Client, name: str, spec: JobSpec, secrets: dict[str, str]) -> dict[str, Any]:
    """Save the form's job as a named template through the API (secret values become Secret blocks)."""
    return client.save_template(name.strip(), spec, secret_env=secrets or None)


def _api_items(exc: APIError) -> list[tuple[str | None, str]]:
    """The API's refusal as (field it names or None, message) pairs: a 422 of FastAPI lists each
    field; SwarmSync's own messages may read 'field: what is wrong; other: ...'."""
    text = re.sub(r"^\d{3}: ", "", str(exc))
    if exc.status == 422 and text.startswith("["):
        try:
            return [(str(item["loc"][-1]), item["msg"].removeprefix("Value error, "))
                    for item in ast.literal_eval(text)]
        except (ValueError, SyntaxError, KeyError, IndexError, TypeError):
            pass
    items: list[tuple[str | None, str]] = []
    for part in re.split(r"; (?=\w+: )", text):
        match = re.match(r"^(\w+): (.*)$", part, re.DOTALL)
        items.append((match.group(1), match.group(2)) if match else (None, part))
    return items


def form_errors(exc: APIError, fields: dict[str, str], words: dict[str, str] | None = None) -> dict[str, str]:
    """Errors by form field from an API refusal: by the field the API names (`fields`: API field ->
    form field), else by a word of the message (`words`), else under '_' (shown above the form)."""
    errors: dict[str, str] = {}
    for name, message in _api_items(exc):
        target = fields.get(name or "")
        if target is None:
            lowered = f"{name or ''} {message}".lower()
            target = next((f for word, f in (words or {}).items() if word in lowered), "_")
            message = message if target != "_" or not name else f"{name}: {message}"
        errors.setdefault(target, message)
    return errors


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


def queue_depths(pools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pool and queue: runs waiting (due), scheduled for later, running."""
    return [{"pool": pool["name"], "queue": queue["name"], "priority": queue["priority"],
             "waiting": queue.get("waiting", 0), "scheduled later": queue.get("scheduled", 0),
             "running": queue.get("running", 0)}
            for pool in pools for queue in pool["queues"]]


def update_pool(client: Client, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change a pool's policy through the API (admins; `pools:manage`); returns the whole policy."""
    return client.update_pool(name, **changes)


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
