"""Submit a job (operators and admins): each invalid field gets its error beside it."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from dashboard import data, session
from swarmsync.client import APIError

client = session.require("jobs:submit")
st.title("Submit a job")

FIELDS = ("image", "command", "shell", "env", "secret_name", "secret_value", "cpu", "memory", "timeout",
          "pids_limit", "output_dir", "tags", "pool", "queue")


def _form() -> data.SubmitForm:
    value = {name: st.session_state.get(f"submit_{name}") for name in FIELDS}
    secret = f"{value['secret_name']}={value['secret_value']}" if (value["secret_name"] or "").strip() else ""
    at = None
    if st.session_state.get("submit_when") == "At a time (UTC)":
        day, clock = st.session_state.get("submit_day"), st.session_state.get("submit_time")
        at = datetime.combine(day, clock, tzinfo=UTC) if day and clock else None
    return data.SubmitForm(
        image=value["image"] or "", command=value["command"] or "", shell=bool(value["shell"]),
        env=value["env"] or "", secret_env=secret, cpu=value["cpu"] or "", memory=value["memory"] or "",
        timeout=value["timeout"] or "", pids_limit=value["pids_limit"] or "", output_dir=value["output_dir"] or "",
        tags=value["tags"] or "", pool=value["pool"] or "", queue=value["queue"] or "", at=at,
    )


def on_submit() -> None:
    form = _form()
    spec, secrets, errors = data.build_submission(form)
    if st.session_state.get("submit_when") == "At a time (UTC)" and form.at is None:
        errors["at"] = "choose a day and a time"
    st.session_state["submit_errors"] = errors
    st.session_state.pop("submitted_job", None)
    if spec is None or errors:
        return
    try:
        job = data.submit(client, spec, secrets, form.pool, form.queue, form.at)
    except APIError as exc:
        st.session_state["submit_errors"] = {"_": str(exc)}
        return
    st.session_state["submitted_job"] = job.id


errors: dict[str, str] = st.session_state.get("submit_errors", {})


def error_for(*names: str) -> None:
    for name in names:
        if name in errors:
            st.error(errors[name], icon=":material/error:")


with st.form("submit"):
    st.text_input("Image", key="submit_image", placeholder="busybox or ghcr.io/org/app:1.2 or name@sha256:...")
    error_for("image")
    st.text_area("Command", key="submit_command", placeholder="echo hello; date", height=80)
    st.checkbox("Run the command with /bin/sh -c (else split into words, exec form)", value=True,
                key="submit_shell")
    error_for("command", "entrypoint")
    st.text_area("Environment (NAME=value, one per line)", key="submit_env", height=80)
    error_for("env")
    s1, s2 = st.columns(2)
    s1.text_input("Secret name (optional)", key="submit_secret_name")
    s2.text_input("Secret value (stored as a Prefect Secret, masked in logs)", type="password",
                  key="submit_secret_value")
    error_for("secret_env", "secrets")
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.text_input("CPU cores", key="submit_cpu", placeholder="0.5")
        error_for("cpu")
    with c2:
        st.text_input("Memory", key="submit_memory", placeholder="256m")
        error_for("memory")
    with c3:
        st.text_input("Timeout (s)", key="submit_timeout", placeholder="60")
        error_for("timeout")
    with c4:
        st.text_input("Process limit", key="submit_pids_limit", placeholder="1024")
        error_for("pids_limit")
    st.text_input("Output folder to archive (absolute path in the container)", key="submit_output_dir",
                  placeholder="/out")
    error_for("output_dir")
    t1, t2, t3 = st.columns(3)
    t1.text_input("Tags (comma separated)", key="submit_tags")
    t2.text_input("Pool (default: the default pool)", key="submit_pool")
    t3.text_input("Queue (default: the pool's default)", key="submit_queue")
    error_for("tags")
    st.radio("When", ["Now", "At a time (UTC)"], horizontal=True, key="submit_when")
    w1, w2 = st.columns(2)
    later = datetime.now(UTC) + timedelta(minutes=10)
    w1.date_input("Day (UTC)", value=later.date(), key="submit_day")
    w2.time_input("Time (UTC)", value=time(later.hour, later.minute), key="submit_time")
    error_for("at")
    st.form_submit_button("Submit job", type="primary", on_click=on_submit)

for name, message in errors.items():
    if name not in ("image", "command", "entrypoint", "env", "secret_env", "secrets", "cpu", "memory", "timeout",
                    "pids_limit", "output_dir", "tags", "at"):
        st.error(f"{name.strip('_') or 'Refused'}: {message}")

if job_id := st.session_state.get("submitted_job"):
    st.success(f"Submitted job {job_id}")
    if st.button("Open the job", key="open_submitted"):
        st.session_state["open_job"] = job_id
        st.switch_page("views/jobs.py")
