"""Schedules: recurring jobs with their next runs; pause, resume, run now or delete (by role)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from swarmsync.client import APIError
from swarmsync.dashboard import data, session

client = session.require("schedules:read")
st.title("Schedules")
st.caption("Create them with `swarmsync schedule create NAME --cron ... IMAGE COMMAND` or `swarmsync.schedules`.")

rows = data.schedules(client)
if not rows:
    st.info("No schedules yet.")
    st.stop()
st.dataframe(pd.DataFrame(rows), hide_index=True)

if session.may("schedules:write"):
    name = st.selectbox("Schedule", [row["name"] for row in rows], key="schedule_name")
    columns = st.columns(4)
    actions = {"pause": "Pause", "resume": "Resume", "run": "Run now", "delete": "Delete"}
    for column, (action, label) in zip(columns, actions.items(), strict=True):
        if column.button(label, key=f"schedule_{action}"):
            try:
                if action == "run":
                    job = client.run_schedule(name)
                    st.success(f"started job {job.id}")
                else:
                    client.change_schedule(name, action)
                    st.success(f"{name}: {action} done")
            except APIError as exc:
                st.error(str(exc))
