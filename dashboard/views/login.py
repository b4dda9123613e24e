"""Log in with a SwarmSync account; the session token stays in the server-side session state."""

from __future__ import annotations

import httpx
import streamlit as st

from swarmsync.client import APIError, CertificateRefused
from swarmsync.dashboard import data, session

st.title("SwarmSync")
st.caption(f"Log in to the SwarmSync API at {data.api_url()}")

ADD_USERS = """**No account yet?** On the machine that runs SwarmSync:

- `swarmsync login-link` prints a one-time link that logs you in as the local admin
  (`swarmsync up` and `make demo` print one too);
- an admin adds users with `swarmsync user add NAME --role operator` (roles: admin, operator,
  viewer; it asks for their password), or on this dashboard's Users page."""

link = st.query_params.get("login")
if link:
    del st.query_params["login"]  # the secret leaves the address bar (and the history) at once
    try:
        browser = data.browser_address(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))
        client, who = data.login_with_link(link, browser=browser)
    except CertificateRefused as exc:
        st.error(f"The SwarmSync API's certificate did not verify; set SWARMSYNC_CA_FILE for the dashboard. ({exc})")
    except APIError:
        st.error("This login link was already used or has expired. Print a new one with "
                 "`swarmsync login-link` on the machine that runs SwarmSync.")
    except httpx.HTTPError:
        st.error(f"The SwarmSync API does not answer at {data.api_url()}: is `swarmsync up` running?")
    else:
        session.start(client, who)
        st.rerun()

with st.form("login"):
    username = st.text_input("User name", key="login_username")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    if not username or not password:
        st.error("Enter your user name and password.")
    else:
        try:
            browser = data.browser_address(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))
            client, who = data.login(username, password, browser=browser)
        except CertificateRefused as exc:
            st.error("The SwarmSync API's certificate did not verify; set SWARMSYNC_CA_FILE for the dashboard. "
                     f"({exc})")
        except APIError as exc:
            if exc.status == 429:
                st.error(f"Too many failed logins; try again later. ({exc})")
            else:
                st.error("Wrong user name or password, or the account is disabled.")
        except httpx.HTTPError:
            st.error(f"The SwarmSync API does not answer at {data.api_url()}: is `swarmsync up` running?")
        else:
            session.start(client, who)
            st.rerun()

st.info(ADD_USERS, icon=":material/person_add:")
