"""Schedules: recurring jobs with their next runs; pause, resume, run now or delete (by role)."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from swarmsync.dashboard import data, feedback, session

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
            if action == "run":
                feedback.act(lambda: client.run_schedule(name), lambda job: f"started job {job.id}")
            else:
                feedback.act(partial(client.change_schedule, name, action), f"{name}: {action} done")
