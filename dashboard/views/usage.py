"""Usage: what finished jobs used (CPU, peak memory, disk and network bytes, wall time), summed per project,
user, pool or image over a period, in the sidebar's project (or all the user's); a project's monthly
CPU-hours budget, which admins set here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from swarmsync.client import APIError
from swarmsync.dashboard import data, session

client = session.require("jobs:read")
st.title("Usage")
st.caption("Measured while each job's containers ran; `swarmsync usage` and `GET /usage` give the same sums.")

left, right = st.columns(2)
by = left.selectbox("Sum per", data.USAGE_GROUPS, key="usage_by")
period = right.selectbox("Finished in", list(data.USAGE_PERIODS), index=1, key="usage_period")
rows = data.usage(client, by, data.USAGE_PERIODS[period])
if not rows:
    st.info("No finished jobs with measured usage in this period.")
else:
    table = pd.DataFrame(data.usage_table(rows, by))
    st.bar_chart(table, x=by, y="cpu_s", horizontal=True, y_label="CPU seconds")
    st.dataframe(table, hide_index=True, use_container_width=True)

project = session.project()
if project:
    st.subheader(f"Budget of project {project}")
    try:
        budget = data.budget(client, project)
    except APIError as exc:
        st.error(str(exc))
        st.stop()
    cap = budget["cpu_hours"]
    used = budget["used_cpu_hours"]
    resets = str(budget["resets"])[:10]
    if cap is None:
        st.write(f"No CPU-hours budget; its jobs used {used:.3f} CPU-hours this month.")
    else:
        st.progress(min(used / cap, 1.0) if cap else 1.0,
                    text=f"{used:.3f} of {cap:g} CPU-hours this month (resets {resets})")
    if session.may("projects:manage"):
        with st.form("budget_form"):
            hours = st.number_input("CPU-hours a month (0 with 'no cap' ticked removes it)", min_value=0.0,
                                    value=float(cap or 0.0), step=1.0, key="budget_hours")
            uncapped = st.checkbox("No cap", value=cap is None, key="budget_none")
            if st.form_submit_button("Save budget"):
                try:
                    data.set_budget(client, project, None if uncapped else hours)
                    st.success("Budget saved")
                    st.rerun()
                except APIError as exc:
                    st.error(str(exc))
else:
    st.caption("Pick a project in the sidebar to see its CPU-hours budget.")
