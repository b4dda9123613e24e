"""The dashboard's own options, in `$SWARMSYNC_HOME/dashboard.json` (admins edit them on the
Settings page). Connection settings stay SWARMSYNC_* environment variables."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from swarmsync.client import dashboard_settings

OPTIONS_FILE = "dashboard.json"


class DashboardOptions(BaseModel):
    refresh_seconds: int = Field(default=5, ge=1, le=3600, description="How often live pages refresh")
    jobs_limit: int = Field(default=200, ge=1, le=200, description="Newest jobs loaded into tables and charts")
    log_tail_lines: int = Field(default=200, ge=10, le=5000, description="Log lines shown on a job page")
    prefect_ui_url: str | None = Field(default=None, max_length=500,
                                       description="Prefect UI for run links (default: from the Prefect API URL)")


def options_path() -> Path:
    return dashboard_settings().home_dir / OPTIONS_FILE


def load_options() -> DashboardOptions:
    try:
        return DashboardOptions.model_validate_json(options_path().read_text())
    except (OSError, ValueError):
        return DashboardOptions()


def save_options(options: DashboardOptions) -> Path:
    path = options_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(options.model_dump(), indent=2))
    tmp.replace(path)
    return path
