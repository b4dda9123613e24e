"""Schedules and templates (of the project picked in the sidebar): recurring jobs with their next
runs, pause, resume, run now or delete; pipeline schedules, pause, resume or delete; saved job
templates, delete. Actions are offered on what
the user may change (its owner, the project's maintainers, admins); the API decides again."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from swarmsync.dashboard import data, feedback, session

client = session.require("schedules:read")
st.title("Schedules")
st.caption("Create them with `swarmsync schedule create NAME --cron ... IMAGE COMMAND`, `swarmsync.schedules` "
           "or the Submit page (On a schedule).")


def label(row: dict) -> str:
    """A schedule or template as a pick shows it: its name, with its project outside the default one."""
    return row["name"] if row["project"] == "default" else f"{row['project']}/{row['name']}"


rows = data.schedules(client)
if not rows:
    st.info("No schedules yet.")
else:
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    mine = {label(row): row for row in rows if session.may_change(row["project"], row["owner"] or None)}
    if session.may("schedules:write") and mine:
        picked = mine[st.selectbox("Schedule", list(mine), key="schedule_name")]
        name, project = picked["name"], picked["project"]
        columns = st.columns(4)
        actions = {"pause": "Pause", "resume": "Resume", "run": "Run now", "delete": "Delete"}
        for column, (action, text) in zip(columns, actions.items(), strict=True):
            if column.button(text, key=f"schedule_{action}"):
                if action == "run":
                    feedback.act(lambda: client.run_schedule(name, project), lambda job: f"started job {job.id}")
                else:
                    feedback.act(partial(client.change_schedule, name, action, project), f"{name}: {action} done")

st.header("Pipeline schedules")
st.caption("Create them with `swarmsync pipeline schedule NAME FILE --every 1h` (or --cron); each run is a "
           "pipeline (see Pipelines), its steps run as the schedule's owner.")
piped = data.pipeline_schedules(client)
if not piped:
    st.info("No pipeline schedules yet.")
else:
    st.dataframe(pd.DataFrame(piped), hide_index=True, key="pipeline_schedules_table")
    ours = {label(row): row for row in piped if session.may_change(row["project"], row["owner"] or None)}
    if session.may("schedules:write") and ours:
        chosen = ours[st.selectbox("Pipeline schedule", list(ours), key="pipeline_schedule_name")]
        for column, action in zip(st.columns(3), ("pause", "resume", "delete"), strict=True):
            if column.button(action.title(), key=f"pipeline_schedule_{action}"):
                feedback.act(partial(client.change_pipeline_schedule, chosen["name"], action, chosen["project"]),
                             f"{chosen['name']}: {action} done")

st.header("Job templates")
st.caption("Save one from the Submit page (Save as job template) or `swarmsync template save NAME IMAGE ...`; "
           "run it with `swarmsync submit --template NAME`.")
saved = data.templates(client)
if not saved:
    st.info("No job templates yet.")
    st.stop()
st.dataframe(pd.DataFrame(saved), hide_index=True, key="templates_table")
deletable = {label(row): row for row in saved if session.may_change(row["project"], row["owner"] or None)}
if session.may("schedules:write") and deletable:
    template = deletable[st.selectbox("Template", list(deletable), key="template_pick")]
    if st.button("Delete template", key="template_delete"):
        feedback.act(partial(client.delete_template, template["name"], template["project"]),
                     f"deleted template {template['name']}")
