"""`AlertWebhook`: Prefect's Custom Webhook notification block, with delivery failures reported.

SwarmSync's alerts (`swarmsync.alerts`) are Prefect Automations whose action sends a notification
through a block. Prefect's own `CustomWebhookNotificationBlock` raises the HTTP client's error when a
webhook cannot be reached or answers an error, which Prefect's action service does not count as a
failed delivery (no `prefect.automation.action.failed` event). This block says the same thing as a
`NotificationError` (what Prefect's Apprise-based blocks raise), so that every undeliverable alert is
recorded, with its reason, as a failed action. Everything else is Prefect's block.

Example:
    ```python
    from swarmsync.blocks import AlertWebhook

    hook = AlertWebhook(name="ops", url="https://hooks.example.com/T0/abc",
                        json_data={"subject": "{{subject}}", "text": "{{body}}"})
    hook.save("swarmsync-alert-ops", overwrite=True)
    AlertWebhook.load("swarmsync-alert-ops").notify("job 1234 failed", subject="SwarmSync")
    ```
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.blocks.abstract import NotificationError
from prefect.blocks.notifications import CustomWebhookNotificationBlock


class AlertWebhook(CustomWebhookNotificationBlock):
    """A webhook a SwarmSync alert posts to (its URL is the owner's secret: only the API shows it, masked)."""

    _block_type_name = "SwarmSync Alert Webhook"
    _block_type_slug = "swarmsync-alert-webhook"

    async def anotify(self, body: str, subject: str | None = None) -> None:
        try:
            await super().anotify(body, subject)
        except Exception as exc:  # noqa: BLE001 - any failure to deliver is a failed delivery
            raise self._failed(exc) from exc

    def notify(self, body: str, subject: str | None = None) -> Any:
        """As Prefect's (awaitable in a running event loop, as its action service calls it), through this
        class's `anotify`: the parent's dispatch is bound to the parent's own `anotify`."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                return super().notify(body, subject, _sync=True)
            except Exception as exc:  # noqa: BLE001
                raise self._failed(exc) from exc
        return self.anotify(body, subject)

    def _failed(self, exc: Exception) -> Exception:
        """NotificationError (what Prefect's action service records as a failed delivery) while Prefect asks
        for failures to be raised; the error itself otherwise."""
        if self._raise_on_failure:
            return NotificationError(log=f"{type(exc).__name__}: {str(exc)[:500]}")
        return exc
