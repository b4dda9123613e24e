"""Schedules and templates (of the project picked in the sidebar): recurring jobs with their next
runs, pause, resume, run now or delete; pipeline schedules, pause, resume or delete; saved job
templates, delete. Actions are offered on what
the user may change (its owner, the project's maintainers, admins); the API decides again."""

from __future__ import annotations

from functools import partial

import streamlit as st

from swarmsync.dashboard import data, feedback, owned, session

client = session.require("schedules:read")
st.title("Schedules")
st.caption("Create them with `swarmsync schedule create NAME --cron ... IMAGE COMMAND`, `swarmsync.schedules` "
           "or the Submit page (On a schedule).")

picked = owned.listing(data.schedules(client), "No schedules yet.", "Schedule", table_key=None,
                       pick_key="schedule_name", permission="schedules:write")
if picked:
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
chosen = owned.listing(data.pipeline_schedules(client), "No pipeline schedules yet.", "Pipeline schedule",
                       table_key="pipeline_schedules_table", pick_key="pipeline_schedule_name",
                       permission="schedules:write")
if chosen:
    for column, action in zip(st.columns(3), ("pause", "resume", "delete"), strict=True):
        if column.button(action.title(), key=f"pipeline_schedule_{action}"):
            feedback.act(partial(client.change_pipeline_schedule, chosen["name"], action, chosen["project"]),
                         f"{chosen['name']}: {action} done")

st.header("Job templates")
st.caption("Save one from the Submit page (Save as job template) or `swarmsync template save NAME IMAGE ...`; "
           "run it with `swarmsync submit --template NAME`.")
template = owned.listing(data.templates(client), "No job templates yet.", "Template", table_key="templates_table",
                         pick_key="template_pick", permission="schedules:write")
if template and st.button("Delete template", key="template_delete"):
    feedback.act(partial(client.delete_template, template["name"], template["project"]),
                 f"deleted template {template['name']}")
