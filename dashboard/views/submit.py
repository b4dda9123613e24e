"""Submit a job (operators and admins): now, at a time or on a schedule, with uploaded input
files (SHA-256 shown and verified), or save it as a job template; in a project where the user
may submit (the one picked in the sidebar, unless another is chosen here). Each invalid field
gets its error beside it; the API's refusals too."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from swarmsync.client import APIError, catalogue
from swarmsync.dashboard import data, forms, session

client = session.require("jobs:submit")
st.title("Submit a job")

FIELDS = ("image", "command", "shell", "env", "secret_name", "secret_value", "tags", "pool", "queue", "requires",
          "compose", "main_service")  # the page's own widgets; the JobSpec's other fields: forms.FORM_FIELDS
NOW, AT, SCHEDULE = "Now", "At a time (UTC)", "On a schedule"
TEMPLATE_FIELDS = {"name": "template_name"}


def _uploads() -> list[forms.Upload]:
    return [
        forms.Upload(key=f.file_id, name=f.name, data=f.getvalue(),
                     path=st.session_state.get(f"submit_input_path_{f.file_id}") or f"/in/{f.name}",
                     expected_sha256=st.session_state.get(f"submit_input_sha256_{f.file_id}") or "")
        for f in st.session_state.get("submit_files") or []
    ]


def _form() -> forms.SubmitForm:
    value = {name: st.session_state.get(f"submit_{name}") for name in FIELDS}
    secret = f"{value['secret_name']}={value['secret_value']}" if (value["secret_name"] or "").strip() else ""
    at = None
    if st.session_state.get("submit_when") == AT:
        day, clock = st.session_state.get("submit_day"), st.session_state.get("submit_time")
        at = datetime.combine(day, clock, tzinfo=UTC) if day and clock else None
    return forms.SubmitForm(
        image=value["image"] or "", command=value["command"] or "", shell=bool(value["shell"]),
        env=value["env"] or "", secret_env=secret,
        fields={name: st.session_state.get(f"submit_{name}") for name in forms.FORM_FIELDS},
        tags=value["tags"] or "", pool=value["pool"] or "", queue=value["queue"] or "",
        requires=value["requires"] or "", at=at, inputs=_uploads(),
        compose=value["compose"] or "", main_service=value["main_service"] or "",
    )


def _checked() -> tuple[forms.SubmitForm, object, dict[str, str], dict[str, str]]:
    form = _form()
    spec, secrets, errors = forms.build_submission(form)
    for key in ("submitted_job", "created_schedule", "saved_template"):
        st.session_state.pop(key, None)
    return form, spec, secrets, errors


def _required(errors: dict[str, str], field: str, message: str) -> str:
    """The text field `submit_FIELD`; `message` in `errors[field]` when it is blank."""
    value = st.session_state.get(f"submit_{field}") or ""
    if not value.strip():
        errors[field] = message
    return value


def on_submit() -> None:
    form, spec, secrets, errors = _checked()
    queue = forms.target_queue(form, errors)
    when = st.session_state.get("submit_when")
    if when == AT and form.at is None:
        errors["at"] = "choose a day and a time"
    if when == SCHEDULE:
        name = _required(errors, "schedule_name",
                         "name the schedule: lowercase letters, digits and dashes, e.g. nightly-report")
        value = _required(errors, "schedule_value", "say when it runs")
    st.session_state["submit_errors"] = errors
    if spec is None or errors:
        return
    try:
        if when == SCHEDULE:
            created = data.create_schedule(
                client, name, spec, secrets, st.session_state.get("submit_schedule_kind") or "cron", value,
                st.session_state.get("submit_timezone") or "", st.session_state.get("submit_overlap") or "allow",
                form.pool, queue, project=st.session_state.get("submit_project"))
            st.session_state["created_schedule"] = created
        else:
            st.session_state["submitted_job"] = data.submit(client, spec, secrets, form.pool, queue, form.at,
                                                            project=st.session_state.get("submit_project")).id
    except APIError as exc:
        fields = data.SCHEDULE_FIELDS if when == SCHEDULE else {}
        st.session_state["submit_errors"] = data.form_errors(exc, fields, data.SCHEDULE_WORDS if fields else None)


def on_save_template() -> None:
    _, spec, secrets, errors = _checked()
    name = _required(errors, "template_name", "name the template: lowercase letters, digits and dashes, e.g. greeter")
    st.session_state["submit_errors"] = errors
    if spec is None or errors:
        return
    try:
        data.save_template(client, name, spec, secrets, project=st.session_state.get("submit_project"))
        st.session_state["saved_template"] = name.strip()
    except APIError as exc:
        st.session_state["submit_errors"] = data.form_errors(exc, TEMPLATE_FIELDS, TEMPLATE_FIELDS)


errors: dict[str, str] = st.session_state.get("submit_errors", {})
shown: set[str] = set()


def error_for(*names: str) -> None:
    for name in names:
        if name in errors:
            shown.add(name)
            st.error(errors[name], icon=":material/error:")


def input_files_section() -> None:
    st.subheader("Input files")
    st.caption("Placed in the container before it starts; the worker checks each file's SHA-256 first "
               f"(at most {forms.max_upload_bytes() // (1024 * 1024)} MiB in all).")
    st.file_uploader("Files", accept_multiple_files=True, key="submit_files")
    error_for("inputs")
    for upload in _uploads():
        size = f"{len(upload.data)} bytes"
        with st.container(border=True):
            st.markdown(f"**{upload.name}** · {size}  \nSHA-256 `{upload.sha256}`")
            p1, p2 = st.columns(2)
            with p1:
                st.text_input("Path in the container", value=f"/in/{upload.name}",
                              key=f"submit_input_path_{upload.key}")
                error_for(f"input_path_{upload.key}")
            with p2:
                st.text_input("Expected SHA-256 (optional: checked before submitting)",
                              key=f"submit_input_sha256_{upload.key}")
                error_for(f"input_sha256_{upload.key}")


def job_fields_section() -> None:
    """A field per JobSpec field the page has no widget of its own for (forms.FORM_FIELDS, from the
    catalogue): text in rows of four, flags as checkboxes; each with its error beside it."""
    texts = [n for n, info in forms.FORM_FIELDS.items() if catalogue.kind(info) != "flag"]
    for start in range(0, len(texts), 4):
        for column, name in zip(st.columns(4), texts[start:start + 4], strict=False):
            with column:
                info = forms.FORM_FIELDS[name]
                listed = " (comma separated)" if catalogue.kind(info) in ("texts", "numbers") else ""
                st.text_input(catalogue.label(name, info) + listed, key=f"submit_{name}", help=info.description)
                error_for(name)
    for name in (n for n in forms.FORM_FIELDS if n not in texts):
        st.checkbox(catalogue.label(name, forms.FORM_FIELDS[name]), key=f"submit_{name}")
        error_for(name)


def schedule_section() -> None:
    n1, n2 = st.columns(2)
    with n1:
        st.text_input("Schedule name", key="submit_schedule_name", placeholder="nightly-report")
        error_for("schedule_name")
    with n2:
        kind = st.radio("Runs", data.SCHEDULE_KINDS, horizontal=True, key="submit_schedule_kind",
                        format_func={"cron": "cron", "every": "every (interval)", "rrule": "RRule"}.get)
    hint = {"cron": "30 2 * * *", "every": "15m, 1h, 90s", "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"}
    w1, w2, w3 = st.columns([2, 1, 1])
    with w1:
        st.text_input("When", key="submit_schedule_value", placeholder=hint[kind or "cron"])
        error_for("schedule_value")
    with w2:
        st.text_input("Time zone (IANA)", value="UTC", key="submit_timezone")
        error_for("timezone")
    with w3:
        st.selectbox("Overlap", data.OVERLAPS, key="submit_overlap",
                     help="allow: runs alongside; skip: a run due while one runs is cancelled; queue: it waits")
        error_for("overlap")


choices = data.submittable(session.projects())
if not choices:
    st.warning("You may not run jobs in any of your projects (a viewer everywhere): ask a maintainer of one to "
               "make you an operator there ('swarmsync project add-member PROJECT USER --role operator').")
    st.stop()
picked = session.project()  # the sidebar's: followed when it changes
if st.session_state.get("submit_project") not in choices or (
        picked in choices and st.session_state.get("submit_project_follows") != picked):
    st.session_state["submit_project"] = picked if picked in choices else (
        "default" if "default" in choices else choices[0])
st.session_state["submit_project_follows"] = picked
st.selectbox("Project", choices, key="submit_project",
             help="The job (or schedule, or template) belongs to this project: its members see it")
st.text_input("Image", key="submit_image", placeholder="busybox or ghcr.io/org/app:1.2 or name@sha256:...")
error_for("image")
st.text_area("Command", key="submit_command", placeholder="echo hello; date", height=80)
st.checkbox("Run the command with /bin/sh -c (else split into words, exec form)", value=True, key="submit_shell")
error_for("command", "entrypoint")
st.text_area("Environment (NAME=value, one per line)", key="submit_env", height=80)
error_for("env")
s1, s2 = st.columns(2)
s1.text_input("Secret name (optional)", key="submit_secret_name")
s2.text_input("Secret value (stored as a Prefect Secret, masked in logs)", type="password", key="submit_secret_value")
error_for("secret_env", "secrets")
job_fields_section()
t1, t2, t3, t4 = st.columns(4)
t1.text_input("Tags (comma separated)", key="submit_tags")
t2.text_input("Pool (default: the default pool)", key="submit_pool")
t3.text_input("Queue (default: the pool's default)", key="submit_queue")
t4.text_input("Requires host labels", key="submit_requires", placeholder="gpu, region=eu",
              help="Runs only on a worker started with every one of these labels (instead of a queue)")
error_for("tags", "requires")
input_files_section()
with st.expander("Services: a compose file (the main service replaces image, command and environment)",
                 expanded=bool(st.session_state.get("submit_compose"))):
    st.text_area("Compose file (YAML)", key="submit_compose", height=200,
                 placeholder="services:\n  web: {image: busybox, command: httpd -f -p 8080}\n"
                             "  app: {image: busybox, command: wget -qO- http://web:8080/, depends_on: [web]}")
    error_for("compose")
    st.text_input("Main service (its exit ends the job)", key="submit_main_service", placeholder="app")
    error_for("main_service")
    st.caption("Timeout, tags, output folder, input files and the secret above apply to the main service; "
               "see docs/compose-jobs.md for the keys supported.")

st.subheader("When")
when = st.radio("When", [NOW, AT, SCHEDULE], horizontal=True, key="submit_when", label_visibility="collapsed")
if when == AT:
    w1, w2 = st.columns(2)
    later = datetime.now(UTC) + timedelta(minutes=10)
    w1.date_input("Day (UTC)", value=later.date(), key="submit_day")
    w2.time_input("Time (UTC)", value=time(later.hour, later.minute), key="submit_time")
    error_for("at")
elif when == SCHEDULE:
    schedule_section()
st.button("Create schedule" if when == SCHEDULE else "Submit job", type="primary", key="submit_job",
          on_click=on_submit)
for name, message in errors.items():
    if name not in shown and name != "template_name":  # the template's name has its error below
        st.error(f"{name.strip('_') or 'Refused'}: {message}")

if job_id := st.session_state.get("submitted_job"):
    st.success(f"Submitted job {job_id}")
    if st.button("Open the job", key="open_submitted"):
        st.session_state["open_job"] = job_id
        st.switch_page("views/jobs.py")
if created := st.session_state.get("created_schedule"):
    st.success(f"Schedule {created['name']} created; next runs: "
               f"{', '.join(str(t)[:16] for t in created.get('next_runs', [])) or '-'}")

with st.expander("Save as job template", expanded="template_name" in errors):
    st.caption("Saves this job under a name (`swarmsync submit --template NAME`); a secret's value goes to a "
               "Prefect Secret block, the template keeps only its name.")
    st.text_input("Template name", key="submit_template_name", placeholder="greeter")
    error_for("template_name")
    st.button("Save as template", key="save_template", on_click=on_save_template)
    if saved := st.session_state.get("saved_template"):
        st.success(f"Saved job template {saved}")
