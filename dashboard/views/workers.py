"""Workers: pools with their policy, queues (priority, concurrency) and workers with telemetry."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, session

client = session.require("health:read")
st.title("Workers")

telemetry = data.workers(client)
(st.success if telemetry["ok"] else st.warning)(telemetry["detail"])

for pool in data.pools(client):
    paused = " · paused" if pool["paused"] else ""
    with st.expander(f"Pool **{pool['name']}** ({pool['type']}){paused}", expanded=True):
        st.markdown("**Workers**")
        if pool["workers"]:
            st.dataframe(pd.DataFrame(pool["workers"]), hide_index=True)
        else:
            st.caption("No worker has polled this pool.")
        st.markdown("**Queues** (lower priority number is served first)")
        st.dataframe(pd.DataFrame(pool["queues"]), hide_index=True)
        st.markdown("**Policy**" + ("" if session.may("pools:manage") else " (read-only)"))
        st.dataframe(pd.DataFrame([{"setting": k, "value": str(v)} for k, v in pool["policy"].items()]),
                     hide_index=True)
        if session.may("pools:manage"):
            st.caption(f"Change it with `swarmsync pool create {pool['name']} --max-memory 8g ...` "
                       "or in the Prefect UI (Work Pools).")
