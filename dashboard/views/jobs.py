"""Jobs: a filterable table (of the project picked in the sidebar), and the page of one job (spec, states,
live log, result, downloads; cancel and re-run for those who may change it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from swarmsync.client import APIError, ArchiveCorrupt, ArchiveStoreError, Client
from swarmsync.dashboard import data, feedback, session
from swarmsync.dashboard.options import load_options

client = session.require("jobs:read")
options = load_options()
st.title("Jobs")

SINCE = {"any time": None, "last hour": timedelta(hours=1), "last 24 hours": timedelta(days=1),
         "last 7 days": timedelta(days=7)}

f1, f2, f3, f4, f5 = st.columns(5)
user = f4.text_input("Submitted by", key="filter_user", placeholder="user name").strip()
# older pages by cursor (each as fast as the first); the stack of cursors goes back; another project or user
# starts over
listing = (client.project, user)
pages = st.session_state.get("jobs_pages")
if not pages or pages[0] != listing:
    pages = st.session_state["jobs_pages"] = [listing, None]
rows = data.list_jobs(client, limit=options.jobs_limit, user=user, after=pages[-1])
states = f1.multiselect("State", sorted({r.state for r in rows if r.state}), key="filter_state")
image = f2.text_input("Image contains", key="filter_image")
tag = f3.text_input("Tag contains", key="filter_tag")
window = SINCE[f5.selectbox("Created", list(SINCE), key="filter_since")]
shown = data.filter_rows(rows, states, image, tag, datetime.now(UTC) - window if window else None, user)
picked = st.dataframe(
    data.styled_table(shown), hide_index=True, key="jobs_table", on_select="rerun", selection_mode="single-row",
    column_config={"exit_code": st.column_config.NumberColumn("exit code", format="%d"),
                   "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f")},
)
newer, older, _ = st.columns([1, 1, 4])
if newer.button("Newer jobs", key="jobs_newer", disabled=len(pages) <= 2):
    pages.pop()
    st.rerun()
if older.button("Older jobs", key="jobs_older", disabled=not rows.next_cursor):
    pages.append(rows.next_cursor)
    st.rerun()
st.caption(f"Page {len(pages) - 1}. Click a row to open its job.")
clicked = [shown[i].id for i in (picked.selection.rows if picked else []) if i < len(shown)]
if clicked and clicked[0] != st.session_state.get("clicked_job"):
    st.session_state["clicked_job"] = clicked[0]
    st.session_state["open_job"] = clicked[0]  # opened below, as a link or a pick would

labels = {r.id: f"{r.id[:8]} · {r.state} · {r.project} · {r.user or '-'} · {r.image} · {r.command[:40]}"
          for r in shown}
# A job to open: just submitted or re-run (open_job), else the link (?job=ID), else the user's pick.
wanted = st.session_state.pop("open_job", None) or (
    None if st.session_state.get("job_pick") else st.query_params.get("job"))
if wanted:
    st.session_state["job_pick"] = wanted
current = st.session_state.get("job_pick")
ids = list(labels)
if current and current not in labels:
    ids.insert(0, current)
    labels[current] = current
job_id = st.selectbox("Open a job", ids, index=None, format_func=lambda i: labels.get(i, i), key="job_pick",
                      placeholder="choose a job")
if not job_id:
    st.stop()
if st.query_params.get("job") != job_id:
    st.query_params["job"] = job_id  # a shareable link to the job (never a token)

try:
    job = data.get_job(client, job_id)
except (Client.JobNotFound, APIError) as exc:
    st.error(f"No such job: {exc}")
    st.stop()

row = job.row()
run = row.flow_run
st.header(f"Job {job.id}")
head1, head2, head3 = st.columns([2, 2, 1])
head1.markdown(f"**State:** {row.state or 'Unknown'}  \n**Project:** {row.project}  \n"
               f"**Submitted by:** {row.user or '- (not through the API)'}  \n{row.message or ''}")
head3.link_button("Open in Prefect UI", data.run_url(job.id), icon=":material/open_in_new:")

actions = head2.container()
changeable = session.may_change(row.project, row.user)  # its submitter, the project's maintainers, admins
if not row.final and session.may("jobs:cancel") and changeable:
    if actions.button("Cancel job", key="cancel", type="primary", icon=":material/cancel:"):
        with actions:
            feedback.act(lambda: data.cancel(job), "Cancel requested: the container is being stopped.")
if row.final and session.may("jobs:submit") and changeable:
    if actions.button("Re-run", key="rerun", icon=":material/replay:"):
        with actions:
            new = feedback.act(lambda: data.rerun(job), lambda again: f"Submitted again as job {again.id}")
        if new is not None:
            st.session_state["open_job"] = new.id
            st.toast(f"Submitted again as job {new.id}")
            st.rerun()

st.subheader("Spec")
st.code(json.dumps(data.masked_spec(run), indent=2), language="json")



@st.fragment(run_every=None if row.final else options.refresh_seconds)
def live_view() -> None:
    """State, state history and the log's tail, refreshed every few seconds until the job ends
    (the log read in batches from where the last refresh stopped: swarmsync/log_follow.py)."""
    current = job.row()
    st.markdown(f"**Now:** {current.state or 'Unknown'} {current.message or ''}")
    st.subheader("State history")
    st.dataframe(pd.DataFrame(data.state_history(job)), hide_index=True)
    st.subheader(f"Log ({current.state or 'Unknown'})")
    tail = data.live_tail(st.session_state, job, options.log_tail_lines)
    st.code("\n".join(tail) or "(no output yet)", language="text")
    if current.final and not row.final:
        st.rerun()  # finished while we watched: show the result and downloads


live_view()

st.subheader("Result")
try:
    result = data.manifest(job)
except (ArchiveCorrupt, ArchiveStoreError) as exc:  # a manifest that does not match its index row, a store down
    st.error(str(exc))
    st.stop()
if result is None:
    st.caption("Not archived yet: the result appears when the job ends.")
    st.stop()
r1, r2, r3 = st.columns(3)
r1.metric("Exit code", "-" if result.get("exit_code") is None else result["exit_code"])
r2.metric("Reason", result.get("reason") or "-")
r3.metric("Final state", result.get("state", "-"))
st.markdown("**Manifest (SHA-256 of every archived file)**")
st.dataframe(pd.DataFrame(data.checksums(result)), hide_index=True)
with st.expander("Whole manifest"):
    st.json(result)

files = result.get("files") or {}
d1, d2, d3, d4 = st.columns(4)
for column, name in ((d1, "output.txt"), (d2, "stdout.txt"), (d3, "stderr.txt"), (d4, "files.tar.gz")):
    if data.downloadable(result, name):
        try:  # checked against the manifest's SHA-256 on the way (a mismatch is shown, never offered)
            body = data.download(client, job.id, name)
        except (ArchiveCorrupt, ArchiveStoreError) as exc:
            column.error(f"{name}: {exc}")
            continue
        mime = "application/gzip" if name == "files.tar.gz" else "text/plain"
        key = "download_files" if name == "files.tar.gz" else f"download_{name}"
        column.download_button(f"Download {name}", body, file_name=f"{job.id}-{name}", mime=mime, key=key)
    elif name in files:
        column.caption(data.download_hint(client, job.id, name))
