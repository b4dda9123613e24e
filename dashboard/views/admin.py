"""Admin (admins only): users and roles (and their SSH login keys), API tokens, the audit log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from swarmsync.dashboard import data, feedback, session

client = session.require("users:manage")
st.title("Admin")
users_tab, tokens_tab, audit_tab = st.tabs(["Users", "Tokens", "Audit log"])

with users_tab:
    users = data.users(client)
    st.dataframe(pd.DataFrame(users), hide_index=True)
    left, right = st.columns(2)
    with left, st.form("add_user", clear_on_submit=True):
        st.markdown("**Add a user**")
        name = st.text_input("User name", key="admin_new_name")
        password = st.text_input("Password", type="password", key="admin_new_password")
        role = st.selectbox("Role", ["viewer", "operator", "admin"], key="admin_new_role")
        if st.form_submit_button("Add user"):
            feedback.act(lambda: client.add_user(name, password, role), f"Added {name} ({role})")
    with right, st.form("change_user"):
        st.markdown("**Change a user**")
        target = st.selectbox("User", [u["username"] for u in users], key="admin_target")
        new_role = st.selectbox("Role", ["(unchanged)", "viewer", "operator", "admin"], key="admin_role")
        status = st.selectbox("Status", ["(unchanged)", "enabled", "disabled"], key="admin_status")
        if st.form_submit_button("Apply"):
            changes: dict = {}
            if new_role != "(unchanged)":
                changes["role"] = new_role
            if status != "(unchanged)":
                changes["disabled"] = status == "disabled"
            if changes:
                feedback.act(lambda: client.update_user(target, **changes), f"Updated {target}: {changes}")

    with st.expander("SSH login keys of a user", expanded=False):
        owner = st.selectbox("User", [u["username"] for u in users], key="admin_keys_user")
        if owner:
            user_keys = data.keys(client, owner)
            if user_keys:
                st.table(user_keys)
            else:
                st.caption(f"{owner} has no SSH login keys.")
            if user_keys:
                with st.form("admin_remove_key"):
                    fingerprint = st.selectbox("Key", [k["fingerprint"] for k in user_keys], key="admin_key_fp")
                    if st.form_submit_button("Remove key"):
                        feedback.act(lambda: data.remove_key(client, fingerprint, owner),
                                     f"Removed {fingerprint} of {owner}: logins with it are refused now")
            with st.form("admin_add_key", clear_on_submit=True):
                line = st.text_area("Add a public key for this user", key="admin_key_line",
                                    placeholder="ssh-ed25519 AAAA... comment")
                if st.form_submit_button("Add key"):
                    feedback.act(lambda: data.add_key(client, line, owner),
                                 lambda added: f"Added {added['fingerprint']} for {owner}")

with tokens_tab:
    tokens = data.tokens(client)
    st.dataframe(pd.DataFrame(tokens), hide_index=True)
    live = [t for t in tokens if not t["revoked"]]
    if live:
        with st.form("revoke"):
            token_id = st.selectbox("Token", [t["id"] for t in live], key="admin_token",
                                    format_func=lambda i: next(f"{t['id']} · {t['name']} · {t['owner']}"
                                                               for t in live if t["id"] == i))
            if st.form_submit_button("Revoke"):
                feedback.act(lambda: client.revoke_token(token_id), f"Revoked token {token_id}")

with audit_tab:
    events = data.audit(client)
    frame = pd.DataFrame(events)
    if not frame.empty:
        frame["detail"] = frame["detail"].astype(str)
    st.dataframe(frame, hide_index=True)
