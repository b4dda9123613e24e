"""Alerts (of the project picked in the sidebar): which webhook is told when the project's jobs fail, time
out, run out of memory, lose their host or end, and whether the last delivery worked. Add one (operators
and maintainers of the project), remove one (its owner, the project's maintainers, admins); the API
decides again."""

from __future__ import annotations

from functools import partial

import streamlit as st

from swarmsync.dashboard import data, feedback, owned, session

client = session.require("jobs:read")
st.title("Alerts")
st.caption("A webhook called by Prefect's Automations when a job of the project ends as chosen; the same as "
           "`swarmsync alert add NAME --on failed --webhook URL`. A delivery that failed shows here with "
           "Prefect's reason.")

rows = data.alerts(client)
owned.table(rows, "No alerts yet.", key="alerts_table")
for row in rows:
    if row["last delivery"].startswith("failed"):
        st.warning(f"Alert {row['name']} ({row['project']}): last delivery failed: {row['reason']}")
picked = owned.pick(rows, "Alert", key="alert_pick", permission="schedules:write", shown=owned.qualified)
if picked and st.button("Remove alert", key="alert_remove"):
    feedback.act(partial(client.remove_alert, picked["name"], picked["project"]), f"removed alert {picked['name']}")

if session.may("schedules:write"):
    st.header("Add an alert")
    writable = data.submittable(session.projects())
    current = session.project()
    with st.form("alert_add", clear_on_submit=False):
        name = st.text_input("Name", key="alert_name", placeholder="nightly-failures")
        on = st.selectbox("On", data.ALERT_ON, key="alert_on",
                          help="failed: any job that ended failed (exit code, refused, timed out, out of memory) "
                               "or lost its host; any-final: every end")
        webhook = st.text_input("Webhook URL", key="alert_webhook", placeholder="https://hooks.example.com/...",
                                help="Stored as your secret (a Prefect block); shown masked")
        project = st.selectbox("Project", writable, key="alert_project",
                               index=writable.index(current) if current in writable else 0) if writable else None
        pool = st.text_input("Only jobs of pool (optional)", key="alert_pool")
        if st.form_submit_button("Add alert"):
            feedback.act(partial(client.add_alert, name.strip(), on, webhook.strip(), project=project,
                                 pool=pool.strip() or None), f"added alert {name.strip()}")
