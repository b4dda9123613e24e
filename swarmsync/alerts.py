"""Alerts: "tell me when my jobs fail", as Prefect Automations on SwarmSync's job events.

An alert is one Prefect Automation (named `swarmsync-alert/<project>/<name>`): an `EventTrigger` on the
`swarmsync.job.*` events (`swarmsync.job_events`) whose related project (and, if given, pool) is the
alert's, and a `SendNotification` action through an `AlertWebhook` block (Prefect's Custom Webhook,
reporting failed deliveries) holding the URL. Its owner and project are the automation's tags
(`swarmsync.user:`, `swarmsync.project:`, as on runs; `swarmsync.owners`); the webhook block is its
owner's secret (`swarmsync.auth.secret_owners`, kind `alert`) and its URL is shown only masked.

What an alert fires on (`ON`):

- `failed`: a job ended failed (an exit code it does not allow, refused, timed out, out of memory) or
  crashed with its host;
- `timed-out`, `oom`, `host-lost`: only those;
- `any-final`: every end (completed too, and cancelled).

Deliveries are Prefect's: each one is a `prefect.automation.action.executed` or `.failed` event of
the automation; `last_delivery` reads the newest (`Alert.delivery`).

Who may do what is the API's (`swarmsync/api/routes_alerts.py`); this module trusts its caller.

    >>> mask_url("https://user:pw@hooks.example.com/services/T0/B1/xyz?token=abc")
    'https://***@hooks.example.com/services/T0/B1/x***?***'
    >>> mask_url("http://127.0.0.1:8080/hook")
    'http://127.0.0.1:8080/hook'
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from swarmsync import job_events
from swarmsync.auth import secret_owners
from swarmsync.blocks import AlertWebhook
from swarmsync.connection import uses_prefect_api
from swarmsync.errors import ConflictError, InvalidError, NotFoundError
from swarmsync.owners import DEFAULT_PROJECT, owner_of_tags, owner_tags, project_of_tags

ON = {
    "failed": (job_events.FINAL, ["failed", "crashed"]),
    "timed-out": ((job_events.TIMED_OUT,), None),
    "oom": ((job_events.OOM_KILLED,), None),
    "host-lost": ((job_events.HOST_LOST,), None),
    "any-final": (job_events.FINAL, None),
}
ALERT_TAG = "swarmsync.alert"
ON_TAG, POOL_TAG = "swarmsync.alert-on:", "swarmsync.alert-pool:"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
SECRET_KIND = "alert"
DELIVERED, FAILED = "prefect.automation.action.executed", "prefect.automation.action.failed"
DELIVERY_WINDOW = timedelta(days=30)

SUBJECT = "SwarmSync alert {alert}: job {{{{ event.resource['swarmsync.job.id'] }}}} {{{{ event.event }}}}"
BODY = """\
Job {{ event.resource['swarmsync.job.id'] }} ({{ event.resource.name }}): {{ event.event }}
reason: {{ event.payload.reason }}; exit code: {{ event.payload.exit_code }}
{{ event.payload.message }}
{% for r in event.related %}{{ r.role }}: {{ r.name }}
{% endfor %}"""


class AlertError(InvalidError):
    """An alert that cannot be made as asked (the message says why)."""


class AlertNotFound(NotFoundError):
    """No alert of that name in that project."""


class AlertExists(ConflictError, AlertError):
    """An alert of that name is already in the project (remove it first)."""


@dataclass
class Delivery:
    """The newest delivery of an alert: `ok` or `failed` (with Prefect's reason), when."""

    status: str
    at: datetime
    reason: str | None = None


@dataclass
class Alert:
    name: str
    project: str
    owner: str | None
    on: str
    pool: str | None
    webhook: str  # masked
    automation_id: str
    enabled: bool = True
    delivery: Delivery | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def mask_url(url: str) -> str:
    """The URL without what may carry credentials: user info, query, and all but the first character of
    the last path segment when the URL has a query or user info or a long last segment (Slack-like tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"***@{host}" if parts.username or parts.password else host
    path = parts.path
    head, _, last = path.rpartition("/")
    if last and (parts.query or parts.username or len(last) >= 16):
        path = f"{head}/{last[0]}***"
    return f"{parts.scheme}://{netloc}{path}" + ("?***" if parts.query else "")


def private_address(url: str) -> str | None:
    """The private, loopback, link-local or reserved address `url`'s host resolves to, if any (a name that
    does not resolve now is not refused: Prefect checks again when it delivers, see `create_alert`)."""
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved \
                or address.is_multicast or address.is_unspecified:
            return str(address)
    return None


def check_webhook(url: str) -> str:
    """`url` when it is an http:// or https:// URL with a host that Prefect's client can send to; AlertError
    (not naming the URL, which may hold a token) otherwise."""
    try:
        parsed = httpx.URL(url)
        parts = urlsplit(url)
        usable = parsed.scheme in ("http", "https") and bool(parsed.host) and bool(parts.hostname)
    except (httpx.InvalidURL, ValueError) as exc:
        raise AlertError(f"webhook: not a usable URL ({str(exc).split(',')[0]})") from None
    if not usable:
        raise AlertError("webhook: an http:// or https:// URL with a host name")
    return url


def automation_name(project: str, name: str) -> str:
    return f"swarmsync-alert/{project}/{name}"


def block_name(project: str, name: str) -> str:
    return f"swarmsync-alert-{project}--{name}"


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise AlertError(f"alert name {name!r}: lowercase letters, digits and dashes, starting with a letter or "
                         "digit, at most 63 characters")
    return name


def trigger(on: str, project: str, pool: str | None) -> EventTrigger:
    """The automation's trigger: each matching job event of the project (and pool) fires it once."""
    if on not in ON:
        raise AlertError(f"--on {on!r}: one of {', '.join(ON)}")
    events, outcomes = ON[on]
    match: dict[str, Any] = {"prefect.resource.id": "prefect.flow-run.*"}
    if outcomes:
        match[job_events.OUTCOME_LABEL] = outcomes
    related = [{"prefect.resource.role": "project", "prefect.resource.id": job_events.resource_id("project", project)}]
    if pool:
        related.append({"prefect.resource.role": "pool", "prefect.resource.id": job_events.resource_id("pool", pool)})
    return EventTrigger(expect=set(events), match=match, match_related=related, posture=Posture.Reactive,
                        threshold=1, within=timedelta(0), for_each={"prefect.resource.id"})


@uses_prefect_api
def create_alert(name: str, on: str, webhook: str, *, project: str | None = None, pool: str | None = None,
                 owner: str | None = None, allow_private: bool = True) -> Alert:
    """Make the alert: its webhook block (the owner's secret), then the automation. AlertExists if the project
    has one of that name. `allow_private` False: a webhook on a private address is refused now, and Prefect
    refuses to deliver to one later (the block's `allow_private_urls`, checked at connection time)."""
    project = project or DEFAULT_PROJECT
    check_name(name)
    the_trigger = trigger(on, project, pool)
    check_webhook(webhook)
    if not allow_private and (address := private_address(webhook)):
        raise AlertError(f"webhook {mask_url(webhook)!r} resolves to the private address {address}: only admins "
                         "may alert there (SWARMSYNC_ALERT_PRIVATE_URLS=true allows everyone)")
    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(automation_name(project, name)):
            raise AlertExists(f"project {project} already has an alert named {name!r} (remove it first)")
        block = block_name(project, name)
        hook = AlertWebhook(name=name, url=webhook, allow_private_urls=allow_private, json_data={
            "alert": name, "project": project, "subject": "{{subject}}", "text": "{{body}}"})
        block_id = hook.save(block, overwrite=True, _sync=True)  # also under a running loop
        secret_owners.record([block], owner, SECRET_KIND, ref=name, project=project)
        tags = [ALERT_TAG, *owner_tags(owner, project), f"{ON_TAG}{on}", *([f"{POOL_TAG}{pool}"] if pool else [])]
        automation_id = client.create_automation(AutomationCore(
            name=automation_name(project, name), description=f"SwarmSync alert {name} of project {project}",
            tags=tags, trigger=the_trigger,
            actions=[SendNotification(block_document_id=block_id, subject=SUBJECT.format(alert=name), body=BODY)],
        ))
    return Alert(name, project, owner, on, pool, mask_url(webhook), str(automation_id))


def _tagged(tags: list[str], prefix: str) -> str | None:
    return next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), None)


@uses_prefect_api
def list_alerts(projects: list[str] | None = None) -> list[Alert]:
    """The alerts of these projects (None: all), with their last delivery, by project and name."""
    with get_client(sync_client=True) as client:
        automations = [a for a in client.read_automations() if ALERT_TAG in (a.tags or [])]
        alerts = []
        for automation in automations:
            project = project_of_tags(automation.tags)
            if projects is not None and project not in projects:
                continue
            alerts.append(_alert_of(client, automation, project))
        deliveries = last_deliveries(client, [a.automation_id for a in alerts])
    for alert in alerts:
        alert.delivery = deliveries.get(alert.automation_id)
    return sorted(alerts, key=lambda a: (a.project, a.name))


def _alert_of(client: Any, automation: Any, project: str) -> Alert:
    name = automation.name.rsplit("/", 1)[-1]
    try:
        webhook = mask_url(AlertWebhook.load(block_name(project, name), _sync=True).url)
    except (ValueError, ObjectNotFound):
        webhook = "(block missing)"
    return Alert(name, project, owner_of_tags(automation.tags), _tagged(automation.tags, ON_TAG) or "?",
                 _tagged(automation.tags, POOL_TAG), webhook, str(automation.id), automation.enabled)


def last_deliveries(client: Any, automation_ids: list[str]) -> dict[str, Delivery]:
    """The newest executed or failed action of each automation, from Prefect's events (one small read each:
    a busy alert's deliveries never hide a quiet one's)."""
    found: dict[str, Delivery] = {}
    since = datetime.now(UTC) - DELIVERY_WINDOW
    for automation_id in automation_ids:
        page = client.read_events(EventFilter(
            occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=[DELIVERED, FAILED]),
            resource=EventResourceFilter(id=[f"prefect.automation.{automation_id}"])), limit=1)
        for event in page.events:  # newest first
            if event.event == FAILED:
                reason = event.payload.get("notification_log") or event.payload.get("reason")
                found[automation_id] = Delivery("failed", event.occurred, str(reason)[:500] if reason else None)
            else:
                found[automation_id] = Delivery("ok", event.occurred)
    return found


def _automations(client: Any, name: str, project: str) -> list[Any]:
    """The alert's automation(s); AlertNotFound when the project has no alert of that name."""
    found = client.read_automations_by_name(automation_name(project, name))
    if not found:
        raise AlertNotFound(f"no alert named {name!r} in project {project}")
    return found


@uses_prefect_api
def get_alert(name: str, project: str | None = None) -> Alert:
    project = project or DEFAULT_PROJECT
    with get_client(sync_client=True) as client:
        alert = _alert_of(client, _automations(client, name, project)[0], project)
        alert.delivery = last_deliveries(client, [alert.automation_id]).get(alert.automation_id)
    return alert


@uses_prefect_api
def delete_alert(name: str, project: str | None = None) -> None:
    """Remove the automation and its webhook block (and the block's owner record)."""
    project = project or DEFAULT_PROJECT
    with get_client(sync_client=True) as client:
        for automation in _automations(client, name, project):
            client.delete_automation(UUID(str(automation.id)))
        try:
            client.delete_block_document(
                client.read_block_document_by_name(block_name(project, name), AlertWebhook.get_block_type_slug()).id)
        except ObjectNotFound:
            pass
    secret_owners.forget([block_name(project, name)])
