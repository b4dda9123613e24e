"""The logged-in user's session, kept server-side in `st.session_state` (never in a URL):
the `swarmsync.Client` holding the token, the user's `/me`, and the project picked in the
sidebar (the client's own project, so listings and forms use it)."""

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


def pick_project() -> str | None:
    """The sidebar's project picker: the user's projects (`GET /projects`, with their role in each) or all of
    them; the pick becomes the client's project. Returns it (None: all)."""
    current = client()
    rows = data.projects(current)
    st.session_state["projects"] = rows
    options = [data.ALL, *(row["name"] for row in rows)]
    if st.session_state.get("project_pick") not in options:  # gone since, or never picked
        st.session_state["project_pick"] = data.ALL
    choice = st.selectbox("Project", options, key="project_pick",
                          format_func=lambda name: "All my projects" if name == data.ALL else name,
                          help="Jobs, schedules and templates of this project; new ones go there")
    data.use_project(current, choice)
    return None if choice == data.ALL else choice


def project() -> str | None:
    """The project picked in the sidebar (None: all the user's)."""
    current = client()
    return current.project if current is not None else None


def projects() -> list[dict[str, Any]]:
    """The user's projects with their role in each, as the sidebar last read them."""
    return st.session_state.get("projects") or []


def may_change(project_name: str | None, owner: str | None) -> bool:
    """Whether the user may change (cancel, re-run, delete, pause) an object of `project_name` made by `owner`."""
    return data.may_change(projects(), project_name, owner, (me() or {}).get("username", ""))


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
