"""Pipelines: the project's pipelines, and one pipeline's DAG drawn with each step's state (refreshed until
it ends), its steps' jobs, cancel and resume for those who may change it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from swarmsync.client import APIError
from swarmsync.dashboard import data, feedback, session
from swarmsync.dashboard.options import load_options
from swarmsync.dashboard.pipeline_graph import pipeline_dot

client = session.require("jobs:read")
options = load_options()
st.title("Pipelines")
st.caption("Submit one with `swarmsync pipeline run FILE` or `POST /pipelines` (docs/pipelines.md).")

rows = data.pipelines(client)
if not rows:
    st.info("No pipelines yet.")
    st.stop()
labels = {r["id"]: f"{r['name']} · {r['state']} · {r['project']} · {r.get('user') or '-'} · {r['id'][:8]}"
          for r in rows}
wanted = st.query_params.get("pipeline")
ids = list(labels)
if wanted and wanted not in labels:
    ids.insert(0, wanted)
pipeline_id = st.selectbox("Open a pipeline", ids, index=ids.index(wanted) if wanted in ids else 0,
                           format_func=lambda i: labels.get(i, i), key="pipeline_pick")
if st.query_params.get("pipeline") != pipeline_id:
    st.query_params["pipeline"] = pipeline_id
try:
    first = data.pipeline(client, pipeline_id)
except APIError as exc:
    st.error(f"No such pipeline: {exc}")
    st.stop()

st.header(f"Pipeline {first['name']}")
changeable = session.may_change(first["project"], first.get("user"))
actions = st.container()
if not first["final"] and session.may("jobs:cancel") and changeable:
    if actions.button("Cancel pipeline", key="pipeline_cancel", type="primary", icon=":material/cancel:"):
        feedback.act(lambda: data.change_pipeline(client, pipeline_id, "cancel"), "Cancel requested.")
if first["final"] and first["state"] != "Completed" and session.may("jobs:submit") and changeable:
    if actions.button("Resume", key="pipeline_resume", icon=":material/replay:"):
        feedback.act(lambda: data.change_pipeline(client, pipeline_id, "resume"),
                     "Resumed: the failed and skipped steps run again.")


@st.fragment(run_every=None if first["final"] else options.refresh_seconds)
def live_view() -> None:
    view = data.pipeline(client, pipeline_id)
    st.markdown(f"**State:** {view['state']}  \n**Project:** {view['project']}  \n"
                f"**Submitted by:** {view.get('user') or '-'}  \n{view.get('message') or ''}")
    st.graphviz_chart(pipeline_dot(view), use_container_width=True)
    st.dataframe(pd.DataFrame(data.step_table(view)), hide_index=True, key="pipeline_steps")
    st.caption("A step's output and files: open its job on the Jobs page (?job=ID).")
    if view["final"] and not first["final"]:
        st.rerun()


live_view()
