"""The dashboard's Alerts page in a real headless Chromium: an alert whose webhook cannot be reached shows its
failed delivery with Prefect's reason. The screenshot is kept as test-artifacts/dashboard/alerts.png (the one
in docs/images/alerts-page.png was taken so)."""

from __future__ import annotations

import socket
import uuid

import swarmsync
from swarmsync import alerts
from tests.dashboard.test_browser import SHOTS, browser_log_in, browser_page, evidence_on_failure, go, settle  # noqa: F401
from tests.waiting import wait_until


def test_the_alerts_page_shows_an_undeliverable_alert_as_failed(browser_page, make_user, busybox,  # noqa: F811
                                                                 no_leftover_containers):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"nightly-{uuid.uuid4().hex[:4]}"
    admin = make_user("admin")
    alerts.create_alert(name, "failed", f"http://127.0.0.1:{port}/services/T0/B1/xoxb-secret-token",
                        project="default", owner=admin.username)
    try:
        assert swarmsync.submit(busybox, "exit 1", pull_policy="never").wait(120).status() == "Failed"
        wait_until(lambda: (alerts.get_alert(name, "default").delivery or alerts.Delivery("-", None)).status
                   == "failed", "the alert's failed delivery", timeout=30)
        page = browser_page
        with evidence_on_failure(page):
            browser_log_in(page, admin)
            go(page, "Alerts", "Alerts", f"Alert {name} (default): last delivery failed")
            assert "xoxb-secret-token" not in page.content()
            settle(page)
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
            page.wait_for_timeout(500)
            page.screenshot(path=str(SHOTS / "alerts.png"), full_page=True)
    finally:
        alerts.delete_alert(name, "default")
