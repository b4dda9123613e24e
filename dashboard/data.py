"""Data access of the dashboard: plain functions over `swarmsync.Client` (the SwarmSync API
with the logged-in user's token). Pages call these and only render; the API does the
role checks and the audit, the core does the work. Jobs come as the API's rows (`JobRow`:
state, final, user, image, command, times, duration), never recomputed here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import FlowRun

from swarmsync.client import ALL_PROJECTS, APIError, Client, JobRow, RemoteJob, dashboard_settings
from swarmsync.spec import JobSpec

SECRET_MASK = "***"
TABLE_COLUMNS = ["id", "state", "exit_code", "duration_s", "user", "project", "image", "command", "tags", "queue",
                 "created", "started", "ended"]
STATE_COLOURS = {  # Prefect state type -> background of the state cell (the Prefect UI's hues, lighter)
    "COMPLETED": "#d3f9d8", "FAILED": "#ffe3e3", "CRASHED": "#ffd8a8", "CANCELLED": "#e9ecef",
    "CANCELLING": "#e9ecef", "RUNNING": "#d0ebff", "PENDING": "#fff3bf", "SCHEDULED": "#fff9db", "PAUSED": "#e5dbff",
}


def api_url() -> str:
    """The SwarmSync API the dashboard talks to."""
    return dashboard_settings().api_url


def prefect_ui_url() -> str:
    """The Prefect UI, for links to each run: the option, else the Prefect API URL without `/api`."""
    from swarmsync.dashboard.options import load_options

    return (load_options().prefect_ui_url or dashboard_settings().prefect_ui_url).rstrip("/")


# --- sessions ----------------------------------------------------------------------------
def login(username: str, password: str, url: str | None = None,
          browser: str | None = None) -> tuple[Client, dict[str, Any]]:
    """Log in to the API; returns the client (holding the session token) and `/me`. `browser`: the
    person's address (`browser_address()`), sent as X-Forwarded-For so that the API's per-address
    lockout and audit see them, not the dashboard's host."""
    client = Client.login(url or api_url(), username, password, forwarded_for=browser)
    return client, client.me()


def login_with_link(secret: str, url: str | None = None,
                    browser: str | None = None) -> tuple[Client, dict[str, Any]]:
    """Exchange a one-time login link's secret for a session (`POST /auth/link`); returns the client and `/me`."""
    client = Client.from_login_link(url or api_url(), secret, forwarded_for=browser)
    return client, client.me()


def browser_address(peer: str | None, forwarded_for: str | None) -> str | None:
    """The X-Forwarded-For chain to send for a browser: what a reverse proxy before the dashboard
    forwarded (if any), then the dashboard's own peer. The API walks it from the right and stops at
    the first address that is not a trusted proxy (SWARMSYNC_TRUSTED_PROXIES), so a chain a browser
    made up itself gains it nothing."""
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()] if isinstance(forwarded_for, str) else []
    if isinstance(peer, str) and peer:
        hops.append(peer)
    return ", ".join(hops)[:1000] or None


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


# --- projects --------------------------------------------------------------------------------
ALL = ALL_PROJECTS  # the picker's "all my projects"
SUBMITTING_ROLES = ("operator", "maintainer", "admin")


def projects(client: Client) -> list[dict[str, Any]]:
    """The projects the user is a member of (admins: all), each with the user's `role` there."""
    return client.projects()


def use_project(client: Client, project: str | None) -> None:
    """Make `project` (None or ALL: every project of the user's) the one the session's listings and forms use:
    the client's own project, so every call that names none goes there."""
    client.project = None if project in (None, ALL) else project


def submittable(rows: list[dict[str, Any]]) -> list[str]:
    """The projects where the user may submit jobs and save schedules and templates (operator or more)."""
    return [row["name"] for row in rows if row.get("role") in SUBMITTING_ROLES]


def may_change(rows: list[dict[str, Any]], project: str | None, owner: str | None, username: str) -> bool:
    """Whether the user may cancel, re-run, delete or change an object of `project` that `owner` made: a
    maintainer there or an admin; an operator there, their own (swarmsync.auth.projects.check_change, which
    the API applies again)."""
    role = {row["name"]: row.get("role") for row in rows}.get(project or "default")
    return role in ("admin", "maintainer") or (role == "operator" and owner is not None and owner == username)


# --- jobs ----------------------------------------------------------------------------------
def list_jobs(client: Client, limit: int = 200, state: str | None = None, user: str | None = None,
              project: str | None = None, after: str | None = None) -> list[JobRow]:
    """The newest jobs (of `project`, default: the session's; see `use_project`); `user`: only those this
    user submitted (filtered by the API, so older ones count too); `after`: the page after the one whose
    `next_cursor` this is (the rows are a `JobPage`: a list with the next page's cursor)."""
    return client.list_jobs(limit=limit, state=state, user=user or None, project=project, after=after)


def table(rows: list[JobRow]) -> list[dict[str, Any]]:
    """Rows as a table shows them (TABLE_COLUMNS): tags as one text, no user as ''."""
    return [{**{column: getattr(row, column) for column in TABLE_COLUMNS}, "state": row.state or "Unknown",
             "user": row.user or "", "tags": ", ".join(row.tags), "queue": row.queue or ""} for row in rows]


def styled_table(rows: list[JobRow]) -> Any:
    """The jobs table as a pandas Styler: state cells coloured by state type, duration in seconds (1 decimal)."""
    import pandas as pd

    frame = pd.DataFrame(table(rows), columns=TABLE_COLUMNS)
    frame["exit_code"] = frame["exit_code"].astype("Int64")
    colours = [STATE_COLOURS.get(row.state_type or "", "") for row in rows]

    def state_colour(column: Any) -> list[str]:
        return [f"background-color: {c}" if c else "" for c in colours]

    return frame.style.apply(state_colour, subset=["state"]).format({"duration_s": "{:.1f}"}, na_rep="")


def filter_rows(rows: list[JobRow], states: list[str] | None = None, image: str = "", tag: str = "",
                since: datetime | None = None, user: str = "") -> list[JobRow]:
    """Rows whose state is one of `states`, image contains `image`, a tag contains `tag`, created after
    `since`, submitted by `user` (exactly)."""
    out = []
    for row in rows:
        if user and row.user != user:
            continue
        if states and row.state not in states:
            continue
        if image and image.lower() not in row.image.lower():
            continue
        if tag and not any(tag.lower() in t.lower() for t in row.tags):
            continue
        if since and row.created and row.created < since:
            continue
        out.append(row)
    return out


def get_job(client: Client, job_id: str) -> RemoteJob:
    return client.get_job(job_id)


def _spec(run: FlowRun) -> dict[str, Any]:
    """The whole JobSpec the run was submitted with (its `job` parameter)."""
    return dict((run.parameters or {}).get("job") or {})


def masked_spec(run: FlowRun) -> dict[str, Any]:
    """The job's spec as submitted, with secret references (and any value) masked."""
    spec = _spec(run)
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


def live_tail(state: Any, job: RemoteJob, lines: int = 200, max_batches: int = 50) -> list[str]:
    """The last `lines` lines of the job's log, kept in `state` (st.session_state) between refreshes:
    each refresh reads only what is new, a batch per request (at most `max_batches` at a time)."""
    from collections import deque

    from swarmsync.client import LogFollower

    key = f"live_tail:{job.id}"
    follower, tail = state.get(key) or (LogFollower(job.log_batch), deque(maxlen=lines))
    for _ in range(max_batches):
        new, more = follower.read()
        for entry in new:
            tail.extend(entry.message.split("\n"))
        if not more:
            break
    state[key] = (follower, tail)
    return list(tail)


def manifest(job: RemoteJob) -> dict[str, Any] | None:
    """The archive manifest, or None while the job has not been archived."""
    try:
        return job.result().manifest
    except LookupError:
        return None


def checksums(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"file": name, "bytes": info.get("size"), "sha256": info.get("sha256")}
            for name, info in sorted((manifest.get("files") or {}).items())]


BROWSER_DOWNLOAD_MAX = 64 << 20
"""The largest archived file the dashboard offers as a download button: Streamlit keeps a
button's bytes in the dashboard's memory, so bigger files are fetched with the CLI or the API
(both stream them) and the page says how."""


def downloadable(manifest: dict[str, Any], name: str) -> bool:
    """Whether `name` is archived and small enough for a download button (its size from the manifest)."""
    info = (manifest.get("files") or {}).get(name)
    return info is not None and int(info.get("size") or 0) <= BROWSER_DOWNLOAD_MAX


def download_hint(client: Client, job_id: str, name: str) -> str:
    """How to fetch a file too big for the browser download: the CLI, or the API with a token."""
    if name == "files.tar.gz":
        cli, path = f"swarmsync files {job_id} -o FOLDER", f"/jobs/{job_id}/files"
    else:
        stream = name.removesuffix(".txt")
        cli, path = f"swarmsync result {job_id} --stream {stream} -o FILE", f"/jobs/{job_id}/result.txt?stream={stream}"
    return (f"`{name}` is larger than {BROWSER_DOWNLOAD_MAX >> 20} MiB: fetch it with `{cli}`, or "
            f"`curl -H 'Authorization: Bearer TOKEN' -o {name} '{client.url}{path}'`.")


def download(client: Client, job_id: str, name: str) -> bytes:
    """An archived file as the API serves it: `output.txt`, `stdout.txt`, `stderr.txt` or `files.tar.gz`
    (only files `downloadable` says fit: the bytes are held in memory for the button)."""
    return client.read_archive_file(job_id, name)


def cancel(job: RemoteJob) -> None:
    job.cancel()


def rerun(job: RemoteJob) -> RemoteJob:
    """Submit the job again, unchanged, in its project, pool and queue (`POST /jobs/{id}/rerun`)."""
    return job.rerun()


def run_url(job_id: str) -> str:
    return f"{prefect_ui_url()}/runs/flow-run/{job_id}"


# --- submission (the form itself is dashboard/forms.py) ---------------------------------
def submit(client: Client, spec: JobSpec, secrets: dict[str, str], pool: str = "", queue: str = "",
           at: datetime | None = None, project: str | None = None) -> RemoteJob:
    return client.submit(spec, secret_env=secrets or None, pool=pool or None, queue=queue or None, at=at,
                         project=project or None)


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
                    timezone: str, overlap: str, pool: str = "", queue: str = "",
                    project: str | None = None) -> dict[str, Any]:
    """A recurring job of `project` through the API's /schedules (`kind`: cron, every or rrule; `when`: its
    text). APIError when refused: see `form_errors` for putting its message beside a field."""
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {SCHEDULE_KINDS}")
    return client.create_schedule(name.strip(), spec, **{kind: when.strip()}, timezone=timezone.strip() or None,
                                  overlap=overlap, pool=pool or None, queue=queue or None,
                                  secret_env=secrets or {}, project=project or None)


def save_template(client: Client, name: str, spec: JobSpec, secrets: dict[str, str],
                  project: str | None = None) -> dict[str, Any]:
    """Save the form's job as a named template of `project` through the API (secret values become Secret
    blocks)."""
    return client.save_template(name.strip(), spec, secret_env=secrets or None, project=project or None)


def _api_items(exc: APIError) -> list[tuple[str | None, str]]:
    """The API's refusal as (field it names or None, message) pairs: the fields of `exc.errors`
    (FastAPI's 422, or SwarmSync's own 422 naming each setting), else its `detail` as a whole."""
    if exc.errors:
        return [(str(e["loc"][-1]) if e["loc"] else None, e["msg"].removeprefix("Value error, "))
                for e in exc.errors]
    return [(None, exc.detail if isinstance(exc.detail, str) else str(exc))]


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


def _active(row: JobRow) -> bool:
    state = row.flow_run.state
    return bool(state) and (state.is_pending() or state.is_running() or state.is_cancelling())


def running_now(rows: list[JobRow]) -> list[JobRow]:
    """Jobs a worker has taken and not finished: Pending, Running or Cancelling."""
    return [row for row in rows if _active(row)]


def jobs_per_hour(rows: list[JobRow]) -> list[dict[str, Any]]:
    """[{hour, state, jobs}] of finished jobs, by the hour they ended and their final state."""
    counts: Counter[tuple[datetime, str]] = Counter()
    for row in rows:
        if row.final and row.ended and row.state_type:
            end = row.ended.astimezone(UTC)
            hour = datetime(end.year, end.month, end.day, end.hour, tzinfo=UTC)
            counts[(hour, row.state_type.title())] += 1
    return [{"hour": hour, "state": state, "jobs": n} for (hour, state), n in sorted(counts.items())]


def durations(rows: list[JobRow]) -> list[float]:
    return [row.duration_s for row in rows if row.final and row.duration_s is not None]


def success_rate(rows: list[JobRow]) -> float | None:
    finished = [row for row in rows if row.final]
    if not finished:
        return None
    return sum(bool(row.flow_run.state and row.flow_run.state.is_completed()) for row in finished) / len(finished)


def lateness(rows: list[JobRow]) -> list[float]:
    """Seconds between when scheduled jobs should have started and when they did."""
    return [max(0.0, (row.started - row.scheduled).total_seconds()) for row in rows if row.started and row.scheduled]


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


def keys(client: Client, user: str | None = None) -> list[dict[str, Any]]:
    """SSH login keys: one's own, or (admins) `user`'s; the columns a table shows."""
    return [{k: row[k] for k in ("fingerprint", "key_type", "comment", "created_at", "last_used_at")}
            for row in client.keys(user)]


def add_key(client: Client, public_key: str, user: str | None = None) -> dict[str, Any]:
    return client.add_key(public_key.strip(), user)


def remove_key(client: Client, fingerprint: str, user: str | None = None) -> dict[str, Any]:
    return client.remove_key(fingerprint, user)


def audit(client: Client, limit: int = 200) -> list[dict[str, Any]]:
    return client.audit(limit=limit)


# --- schedules ---------------------------------------------------------------------------
def schedules(client: Client) -> list[dict[str, Any]]:
    """One row per named schedule (of the session's project): its project and owner, when it runs, overlap
    policy, next runs, paused or not."""
    rows = []
    for item in client.schedules():
        rows.append({
            "name": item["name"],
            "project": item.get("project") or "default",
            "owner": item.get("owner") or "",
            "when": "; ".join(s["description"] for s in item["schedules"]),
            "overlap": item["overlap"],
            "paused": item["paused"],
            "next runs": ", ".join(str(t)[:16] for t in item["next_runs"]) or "-",
            "image": item["job"].get("image", ""),
            "pool": item["pool"] or "",
        })
    return rows


def pipeline_schedules(client: Client) -> list[dict[str, Any]]:
    """One row per pipeline schedule (of the session's project): its project and owner, when it runs, its
    pipeline and steps, next runs, paused or not."""
    return [{
        "name": item["name"],
        "project": item.get("project") or "default",
        "owner": item.get("owner") or "",
        "when": "; ".join(item["schedules"]),
        "pipeline": item["pipeline"].get("name", ""),
        "steps": ", ".join(item["steps"]),
        "paused": item["paused"],
        "next runs": ", ".join(str(t)[:16] for t in item["next_runs"]) or "-",
    } for item in client.pipeline_schedules()]


def alerts(client: Client) -> list[dict[str, Any]]:
    """One row per alert (of the session's project): what it fires on, its masked webhook, its last delivery
    (ok, or failed and Prefect's reason)."""
    rows = []
    for item in client.alerts():
        delivery = item.get("last_delivery") or {}
        rows.append({
            "name": item["name"], "project": item["project"], "owner": item.get("owner") or "", "on": item["on"],
            "pool": item.get("pool") or "", "webhook": item["webhook"],
            "last delivery": f"{delivery['status']} {str(delivery['at'])[:19]}" if delivery else "-",
            "reason": delivery.get("reason") or "",
        })
    return rows


ALERT_ON = ("failed", "timed-out", "oom", "host-lost", "any-final")  # swarmsync.alerts.ON


def templates(client: Client) -> list[dict[str, Any]]:
    """One row per saved job template (of the session's project): name, project, owner, image, command."""
    rows = []
    for stored, item in sorted(client.templates().items()):
        command = item.get("command")
        rows.append({
            "name": item.get("name") or stored,
            "project": item.get("project") or "default",
            "owner": item.get("owner") or "",
            "image": item.get("image", ""),
            "command": command if isinstance(command, str) else " ".join(command or []),
        })
    return rows


# --- pipelines ------------------------------------------------------------------------------
def pipelines(client: Client, limit: int = 100) -> list[dict[str, Any]]:
    """Pipelines of the project picked in the sidebar (all the user's: every project of theirs), newest first."""
    return client.pipelines(limit=limit)


def pipeline(client: Client, pipeline_id: str) -> dict[str, Any]:
    return client.pipeline(pipeline_id)


def change_pipeline(client: Client, pipeline_id: str, action: str) -> dict[str, Any]:
    return client.change_pipeline(pipeline_id, action)


def step_table(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"step": s["name"], "state": s["state"], "needs": ", ".join(s["needs"]), "when": s["when"],
             "attempts": s.get("attempts") or 0, "job": s.get("job_id") or "", "message": s.get("message") or ""}
            for s in view.get("steps", [])]


# --- usage and budgets -----------------------------------------------------------------------
USAGE_PERIODS = {"Last day": "1d", "Last 7 days": "7d", "Last 30 days": "30d", "All time": None}
USAGE_GROUPS = ("project", "user", "pool", "image")


def usage(client: Client, by: str = "project", since: str | None = "7d") -> list[dict[str, Any]]:
    """Finished jobs' measured use summed `by` (`GET /usage`), in the client's project (None: all the user's)."""
    return client.usage(by, since=since)


def usage_table(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """The sums as the Usage page shows them: CPU in seconds and hours, bytes in MiB."""
    mib = 1024 * 1024
    return [{by: row["key"] or "-", "jobs": row["jobs"], "cpu_s": round(row["cpu_seconds"], 1),
             "cpu_hours": round(row["cpu_seconds"] / 3600, 3),
             "peak_memory_mib": round(row["memory_peak_bytes"] / mib, 1),
             "disk_read_mib": round(row["block_read_bytes"] / mib, 1),
             "disk_written_mib": round(row["block_write_bytes"] / mib, 1),
             "net_in_mib": round(row["net_rx_bytes"] / mib, 2), "net_out_mib": round(row["net_tx_bytes"] / mib, 2),
             "wall_s": round(row["wall_seconds"], 1)} for row in rows]


def budget(client: Client, project: str) -> dict[str, Any]:
    return client.budget(project)


def set_budget(client: Client, project: str, cpu_hours: float | None) -> dict[str, Any]:
    return client.set_budget(project, cpu_hours)
