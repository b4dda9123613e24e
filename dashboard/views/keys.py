"""My keys: the SSH keys the logged-in user logs in with (`swarmsync login --key`); add and remove."""

from __future__ import annotations

import streamlit as st

from swarmsync.dashboard import data, feedback, session

client = session.require("keys:own")
st.title("My SSH keys")
st.caption("Log in from the command line with a key instead of a password: "
           "`swarmsync login URL -u NAME --key ~/.ssh/id_ed25519` (ssh-ed25519 or sk-ssh-ed25519 hardware keys).")

mine = data.keys(client)
if mine:
    st.dataframe(mine, hide_index=True)
    with st.form("remove_key"):
        fingerprint = st.selectbox("Key", [k["fingerprint"] for k in mine], key="key_remove_fp",
                                   format_func=lambda fp: next(f"{k['fingerprint']} · {k['comment'] or '-'}"
                                                               for k in mine if k["fingerprint"] == fp))
        if st.form_submit_button("Remove key"):
            feedback.act(lambda: data.remove_key(client, fingerprint),
                         f"Removed {fingerprint}: logins with it are refused now")
else:
    st.info("No SSH keys yet.")

with st.form("add_key", clear_on_submit=True):
    line = st.text_area("Add a public key: paste the one line of your .pub file (never the private key)",
                        key="key_add_line", placeholder="ssh-ed25519 AAAAC3Nza... you@laptop")
    if st.form_submit_button("Add key"):
        feedback.act(lambda: data.add_key(client, line),
                     lambda added: f"Added {added['key_type']} key {added['fingerprint']}")
