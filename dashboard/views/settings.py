"""Settings: the API address and the dashboard's options (admins edit them)."""

from __future__ import annotations

import streamlit as st
from pydantic import ValidationError

from swarmsync.client import dashboard_settings
from swarmsync.dashboard import data, session
from swarmsync.dashboard.options import DashboardOptions, load_options, options_path, save_options

session.require("jobs:read")
st.title("Settings")

settings = dashboard_settings()
st.subheader("Addresses (SWARMSYNC_PUBLIC_URL, SWARMSYNC_DASHBOARD_PUBLIC_URL, SWARMSYNC_PREFECT_UI_URL)")
st.dataframe(
    [
        {"setting": "SwarmSync API", "value": settings.public_api_url},
        {"setting": "Prefect UI", "value": data.prefect_ui_url()},
        {"setting": "Default work pool", "value": settings.work_pool},
        {"setting": "Dashboard", "value": settings.dashboard_url},
    ],
    hide_index=True,
)

options = load_options()
st.subheader(f"Dashboard options ({options_path()})")
if not session.may("settings:manage"):
    st.dataframe([{"option": k, "value": str(v)} for k, v in options.model_dump().items()], hide_index=True)
    st.caption("Only admins may change these.")
    st.stop()

with st.form("options"):
    refresh = st.number_input("Refresh live pages every (s)", 1, 3600, options.refresh_seconds,
                              key="opt_refresh_seconds")
    limit = st.number_input("Newest jobs loaded (at most 200)", 1, 200, options.jobs_limit, key="opt_jobs_limit")
    tail = st.number_input("Log lines on a job page", 10, 5000, options.log_tail_lines, key="opt_log_tail_lines")
    ui = st.text_input("Prefect UI URL (empty: from the Prefect API URL)", options.prefect_ui_url or "",
                       key="opt_prefect_ui_url")
    if st.form_submit_button("Save"):
        try:
            saved = save_options(DashboardOptions(refresh_seconds=int(refresh), jobs_limit=int(limit),
                                                  log_tail_lines=int(tail), prefect_ui_url=ui.strip() or None))
            st.success(f"Saved to {saved}")
        except ValidationError as exc:
            st.error(str(exc))
