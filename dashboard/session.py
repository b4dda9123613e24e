"""The logged-in user's session, kept server-side in `st.session_state` (never in a URL):
the `swarmsync.Client` holding the token, and the user's `/me`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from swarmsync.client import Client
from swarmsync.dashboard import data


def client() -> Client | None:
    return st.session_state.get("client")


def me() -> dict[str, Any] | None:
    return st.session_state.get("me")


def start(new_client: Client, who: dict[str, Any]) -> None:
    st.session_state["client"] = new_client
    st.session_state["me"] = who


def end() -> None:
    """Log out at the API and forget the session."""
    if (current := client()) is not None:
        data.logout(current)
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def may(permission: str) -> bool:
    return data.may(me(), permission)


def require(permission: str) -> Client:
    """The client, or stop the page with a clear refusal if the role lacks `permission`."""
    current = client()
    if current is None:
        st.warning("Log in first.")
        st.stop()
    if not may(permission):
        st.error(f"Your role ({(me() or {}).get('role')}) may not {permission}.")
        st.stop()
    return current
