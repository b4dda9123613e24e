"""THE list of dashboard pages (the seam: a new page is one file in views/ and one line here).

`permission` is what the user's role must grant (per the API's `/me`) for the page to
appear at all; None: every logged-in user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "views"  # not pages/: see README


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    permission: str | None = None

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


LOGIN = PageSpec("login.py", "Log in", ":material/login:")

PAGES: list[PageSpec] = [
    PageSpec("overview.py", "Overview", ":material/monitoring:", "health:read"),
    PageSpec("jobs.py", "Jobs", ":material/list:", "jobs:read"),
    PageSpec("pipelines.py", "Pipelines", ":material/account_tree:", "jobs:read"),
    PageSpec("submit.py", "Submit", ":material/add_circle:", "jobs:submit"),
    PageSpec("schedules.py", "Schedules", ":material/schedule:", "schedules:read"),
    PageSpec("alerts.py", "Alerts", ":material/notifications:", "jobs:read"),
    PageSpec("workers.py", "Workers", ":material/dns:", "health:read"),
    PageSpec("usage.py", "Usage", ":material/data_usage:", "jobs:read"),
    PageSpec("admin.py", "Admin", ":material/admin_panel_settings:", "users:manage"),
    PageSpec("keys.py", "My keys", ":material/key:", "keys:own"),
    PageSpec("settings.py", "Settings", ":material/settings:"),
]


def visible_pages(permissions: list[str]) -> list[PageSpec]:
    """The pages a user with these permissions sees, in menu order."""
    return [p for p in PAGES if p.permission is None or p.permission in permissions]
