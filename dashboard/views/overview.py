"""Overview: health of each part, queue depth per pool and queue, jobs running now, charts;
refreshes on its own."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from swarmsync.dashboard import data, session
from swarmsync.dashboard.options import load_options

client = session.require("health:read")
options = load_options()
st.title("Overview")


@st.fragment(run_every=options.refresh_seconds)
def live() -> None:
    checks = data.health(client)
    columns = st.columns(len(checks))
    for column, check in zip(columns, checks, strict=True):
        with column:
            mark = ":green[● up]" if check["ok"] else (":red[● down]" if check["required"] else ":orange[● off]")
            st.markdown(f"**{check['part']}**  \n{mark}")
            st.caption(check["detail"])

    runs = data.list_jobs(client, limit=options.jobs_limit)
    running = data.running_now(runs)
    rate = data.success_rate(runs)
    a, b, c = st.columns(3)
    a.metric("Running now", len(running))
    b.metric(f"Jobs (newest {options.jobs_limit})", len(runs))
    c.metric("Success rate", "-" if rate is None else f"{rate:.0%}")

    st.subheader("Queue depth")
    st.dataframe(pd.DataFrame(data.queue_depths(data.pools(client))), hide_index=True)

    st.subheader("Running now")
    if running:
        st.dataframe(pd.DataFrame(data.table(running))[["id", "state", "image", "command", "started"]],
                     hide_index=True)
    else:
        st.caption("No job is running.")

    left, right = st.columns(2)
    with left:
        st.subheader("Jobs per hour by final state")
        per_hour = data.jobs_per_hour(runs)
        if per_hour:
            frame = pd.DataFrame(per_hour).pivot_table(index="hour", columns="state", values="jobs", fill_value=0)
            st.bar_chart(frame)
        else:
            st.caption("No finished jobs yet.")
    with right:
        st.subheader("Duration (seconds)")
        spans = data.durations(runs)
        if spans:
            bins = pd.cut(pd.Series(spans), bins=min(10, max(1, len(set(spans)))))
            counts = bins.value_counts(sort=False)
            labels = [f"{i.left:.1f}-{i.right:.1f}" for i in counts.index]
            st.bar_chart(pd.DataFrame({"jobs": counts.values}, index=labels))
        else:
            st.caption("No finished jobs yet.")
    late = data.lateness(runs)
    if late:
        st.subheader("Lateness of start (seconds after the scheduled time)")
        st.line_chart(pd.DataFrame({"lateness_s": late[::-1]}))


live()
