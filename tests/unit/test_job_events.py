"""Job events' shape, and which of them Core's gateway passes from a worker host with a token: only events
about its own pool's runs, naming the run's own user, project and pool (else another project's alert could
be made to fire)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from swarmsync import alerts, job_events
from swarmsync.auth.worker_tokens import WorkerPrincipal
from swarmsync.gateway.events import event_allowed
from swarmsync.gateway.scope import Scope

RUN = "6f1c0a2e-1111-4d6a-9a31-0c1f7d9a0b01"
OTHER_POOL_RUN = "6f1c0a2e-2222-4d6a-9a31-0c1f7d9a0b02"


def gateway() -> Any:
    scope = Scope(upstream=None)  # every run below is learned: nothing is read upstream
    scope.learn_run({"id": RUN, "work_pool_name": "gpu", "labels": {"swarmsync.user": "ann",
                                                                    "swarmsync.project": "data"}})
    scope.learn_run({"id": OTHER_POOL_RUN, "work_pool_name": "cpu", "labels": {"swarmsync.project": "data"}})
    return SimpleNamespace(scope=scope)


def event(run: str, user: str = "ann", project: str = "data", pool: str = "gpu") -> dict[str, Any]:
    return {"event": job_events.EXITED, "resource": {"prefect.resource.id": f"prefect.flow-run.{run}"},
            "related": job_events.related_resources(user, project, pool, "w1", "busybox")}


@pytest.mark.parametrize(("sent", "passes"), [
    (event(RUN), True),
    (event(RUN, project="secret-project"), False),
    (event(RUN, user="bob"), False),
    (event(RUN, pool="cpu"), False),
    (event(OTHER_POOL_RUN, user=None, pool="cpu"), False),
])
def test_the_gateway_passes_only_job_events_naming_their_own_runs_owners(sent, passes):
    principal = WorkerPrincipal(token_id=1, name="w1", pool="gpu", queue=None)
    assert anyio.run(event_allowed, gateway(), principal, sent) is passes


def test_each_alert_kind_selects_its_events_of_its_project_and_pool():
    failed = alerts.trigger("failed", "data", "gpu")
    assert set(failed.expect) == set(job_events.FINAL)
    assert failed.match.root[job_events.OUTCOME_LABEL] == ["failed", "crashed"]
    assert [dict(r.root) for r in failed.match_related] == [
        {"prefect.resource.role": "project", "prefect.resource.id": "swarmsync.project.data"},
        {"prefect.resource.role": "pool", "prefect.resource.id": "swarmsync.pool.gpu"}]
    assert alerts.trigger("oom", "data", None).expect == {job_events.OOM_KILLED}
    with pytest.raises(alerts.AlertError, match="one of failed"):
        alerts.trigger("sometimes", "data", None)


@pytest.mark.parametrize("url", ["https://\u00cc0\u00aaPz\u001bh", "ftp://hooks.example.com/x", "https://",
                                 "http://[::1", "hooks.example.com/x"])
def test_a_webhook_that_is_no_usable_url_is_refused_without_echoing_it(url):
    """The API's fuzz test found a non-printable host reaching Prefect's client (a 500)."""
    with pytest.raises(alerts.AlertError) as refused:
        alerts.check_webhook(url)
    assert "hooks.example.com" not in str(refused.value)


def test_a_usable_webhook_is_kept_as_given():
    assert alerts.check_webhook("https://hooks.example.com/services/T0/B1/xyz?token=abc").endswith("token=abc")
