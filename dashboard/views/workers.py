"""Workers: pools with their policy (admins edit it), queues (priority, concurrency) and
workers with telemetry."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from swarmsync.client import APIError
from swarmsync.dashboard import data, forms, session

client = session.require("health:read")
st.title("Workers")

LABELS = forms.POLICY_LABELS  # every HostPolicy setting (its label from the catalogue) and the pool's own
PULL_POLICIES = ("if-not-present", "always", "never")


def _key(pool: str, name: str) -> str:
    return f"policy_{pool}_{name}"


def on_save(pool: str, current: dict[str, Any]) -> None:
    values = {name: st.session_state.get(_key(pool, name)) for name in current if name in LABELS}
    changes, errors = forms.policy_changes(current, values)
    st.session_state.pop(f"policy_saved_{pool}", None)
    if not errors and changes:
        try:
            data.update_pool(client, pool, changes)
            st.session_state[f"policy_saved_{pool}"] = sorted(changes)
        except APIError as exc:
            errors = data.form_errors(exc, {name: name for name in LABELS})
    elif not errors:
        errors = {"_": "nothing changed"}
    st.session_state[f"policy_errors_{pool}"] = errors


def policy_form(pool: str, current: dict[str, Any]) -> None:
    errors: dict[str, str] = st.session_state.get(f"policy_errors_{pool}", {})
    with st.form(f"policy_{pool}"):
        st.caption("Empty: no ceiling / the built-in default. Workers apply changes from their next heartbeat "
                   "(within 30 s).")
        flags = [n for n in forms.POLICY_FLAGS if n in current]  # a pool made before a flag existed lacks it
        for start in range(0, len(flags), 3):
            for column, name in zip(st.columns(3), flags[start:start + 3], strict=False):
                with column:
                    st.checkbox(LABELS[name], value=bool(current.get(name)), key=_key(pool, name))
        fields = [n for n in current if n in LABELS and n not in forms.POLICY_FLAGS]
        for start in range(0, len(fields), 4):
            for column, name in zip(st.columns(4), fields[start:start + 4], strict=False):
                with column:
                    if name == "pull_policy":
                        value = current.get(name) or "if-not-present"
                        st.selectbox(LABELS[name], PULL_POLICIES, index=PULL_POLICIES.index(value)
                                     if value in PULL_POLICIES else 0, key=_key(pool, name))
                    else:
                        st.text_input(LABELS[name], value=forms.policy_text(current.get(name)), key=_key(pool, name))
                    if name in errors:
                        st.error(errors[name], icon=":material/error:")
        for name, message in errors.items():
            if name not in fields and name not in forms.POLICY_FLAGS:
                st.error(message if name == "_" else f"{name}: {message}")
        st.form_submit_button("Save policy", type="primary", on_click=on_save, args=(pool, current))
    if saved := st.session_state.get(f"policy_saved_{pool}"):
        st.success(f"Saved {', '.join(saved)}.")


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
        if session.may("pools:manage") and pool["policy"]:
            policy_form(pool["name"], pool["policy"])
        else:
            st.dataframe(pd.DataFrame([{"setting": k, "value": str(v)} for k, v in pool["policy"].items()]),
                         hide_index=True)
