"""SwarmSync dashboard: the entry of the Streamlit multipage app (`swarmsync dashboard`).

Unauthenticated users see only the login page; logged-in users see the pages their role
allows (dashboard/navigation.py). All data comes through the SwarmSync API.
"""

from __future__ import annotations

import streamlit as st

from swarmsync.client import APIError
from swarmsync.dashboard import session
from swarmsync.dashboard.navigation import LOGIN, visible_pages

st.set_page_config(page_title="SwarmSync", page_icon=":material/hub:", layout="wide")


def main() -> None:
    who = session.me()
    if who is None:
        page = st.navigation([st.Page(LOGIN.path, title=LOGIN.title, icon=LOGIN.icon)])
    else:
        pages = [st.Page(p.path, title=p.title, icon=p.icon) for p in visible_pages(who.get("permissions", []))]
        page = st.navigation(pages)
        with st.sidebar:
            st.markdown(f"**{who['username']}** · {who['role']}")
            if st.button("Log out", key="logout", icon=":material/logout:"):
                session.end()
                st.rerun()
    try:
        if who is not None:
            with st.sidebar:
                session.pick_project()  # the user's projects; the pick is what the pages list and create in
        page.run()
    except APIError as exc:
        if exc.status == 401:  # session expired or revoked: back to the login page
            session.end()
            st.warning("Your session ended; please log in again.")
            st.rerun()
        st.error(str(exc))


main()
