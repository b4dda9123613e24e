"""The command line against the stack's own API process (`swarmsync up` starts it):
login and the stored token, user and token commands, and the role matrix of the job,
schedule and template commands when SWARMSYNC_URL points at the API.

Most commands run in-process (Typer's CliRunner: no 3-second import per call); a few run
as real `swarmsync` processes to check exit codes and messages end to end."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

import swarmsync
from swarmsync.auth import audit, tokens, users
from swarmsync.auth.roles import Principal
from swarmsync.cli.main import app
from swarmsync.connection import prefect_api
from tests.accounts.conftest import PASSWORD
from tests.probes import COMMAND, HEAVY, NOT_FOR_READING, run_probe


def process(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "swarmsync.cli.main", *args], capture_output=True, text=True, input=stdin,
        timeout=180, env={**os.environ, **(env or {})},
    )


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict | None = None, stdin: str | None = None) -> Ran:
    """`swarmsync ARGS` in-process; the app itself turns refusals into exit code 4 and an 'error:' line."""
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), input=stdin, env={"SWARMSYNC_URL": None, **(env or {})})
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def remote(stack, tmp_path) -> dict[str, str]:
    """Env for a CLI user on another machine: the API URL, a config dir of their own, no Redis."""
    return {"SWARMSYNC_URL": f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}",
            "SWARMSYNC_CONFIG_DIR": str(tmp_path / "config")}


def _user(role: str) -> tuple[str, str]:
    """A user and an API token for them, made on the server host."""
    name = f"cli-{role}-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, PASSWORD, role)
    return name, tokens.create_token(Principal.local(), "cli", name).token


def test_first_admin_on_the_server_host_then_login_keeps_a_private_token(stack, remote, tmp_path):
    name = f"first-admin-{uuid.uuid4().hex[:6]}"
    added = cli("user", "add", name, "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n",
                env={"SWARMSYNC_CONFIG_DIR": remote["SWARMSYNC_CONFIG_DIR"]})
    assert added.returncode == 0, added.stderr
    login = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--password-stdin", stdin=PASSWORD + "\n",
                env={"SWARMSYNC_CONFIG_DIR": remote["SWARMSYNC_CONFIG_DIR"]})
    assert login.returncode == 0, login.stderr
    stored = Path(remote["SWARMSYNC_CONFIG_DIR"]) / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert '"token": "sss_' in stored.read_text() and PASSWORD not in stored.read_text()
    only_config = {"SWARMSYNC_CONFIG_DIR": remote["SWARMSYNC_CONFIG_DIR"]}  # no SWARMSYNC_URL: the stored login
    whoami = cli("whoami", env=only_config)
    assert whoami.returncode == 0 and f"{name} (admin" in whoami.stdout
    assert cli("logout", env=only_config).returncode == 0
    assert not stored.exists()
    wrong = cli("login", remote["SWARMSYNC_URL"], "-u", name, "--password-stdin", stdin="wrong password\n",
                env=only_config)
    assert wrong.returncode == 1 and "wrong username or password" in wrong.stderr


def test_job_commands_through_the_api_follow_the_roles(stack, remote, busybox, no_leftover_containers):
    viewer, viewer_token = _user("viewer")
    operator, operator_token = _user("operator")
    as_viewer = {**remote, "SWARMSYNC_TOKEN": viewer_token}
    as_operator = {**remote, "SWARMSYNC_TOKEN": operator_token}

    ran = process("submit", "--wait", busybox, "--", "sh", "-c", "echo via-api", env=as_operator)
    assert ran.returncode == 0, ran.stderr
    assert "via-api" in ran.stdout
    job_id = ran.stderr.split()[1]
    assert cli("result", job_id, env=as_viewer).stdout == "via-api\n"
    assert "Completed" in cli("status", job_id, env=as_viewer).stdout
    assert job_id in cli("jobs", "--limit", "50", env=as_viewer).stdout
    assert "via-api" in cli("logs", job_id, env=as_viewer).stdout

    refused = process("submit", busybox, "echo", "no", env=as_viewer)
    assert refused.returncode == 4 and "403" in refused.stderr and "may not jobs:submit" in refused.stderr
    later = swarmsync.submit(busybox, "true", at=datetime.now(UTC) + timedelta(hours=1))  # waits, Scheduled
    try:
        cancel = cli("cancel", later.id, env=as_viewer)
        assert cancel.returncode == 4 and "may not jobs:cancel" in cancel.stderr
        assert later.status() == "Scheduled"
    finally:
        with prefect_api(), get_client(sync_client=True) as client:
            client.delete_flow_run(UUID(later.id))
    anonymous = cli("jobs", env=remote)
    assert anonymous.returncode == 4 and "401" in anonymous.stderr
    traversal = cli("result", "../../etc/passwd", env=as_viewer)
    assert traversal.returncode == 2 and "root:" not in traversal.stdout


def test_reading_job_commands_through_the_api_import_no_prefect(stack, remote, busybox, no_leftover_containers,
                                                                tmp_path):
    """`swarmsync jobs`, `status ID`, `result ID` and `logs ID` of a finished job, as a user on another machine
    (the API's URL and a token; no Prefect or database settings), print what they always printed and start
    without Prefect (docs/benchmarks.md, CLI start)."""
    _, token = _user("operator")
    job = swarmsync.Client(remote["SWARMSYNC_URL"], token).submit(busybox, ["echo", "started"]).wait(120)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}, **remote,
           "SWARMSYNC_TOKEN": token, "SWARMSYNC_HOME": str(tmp_path), "COLUMNS": "200"}
    expected = {("jobs",): [job.id],
                ("status", job.id): [f"{job.id}: Completed",
                                     f"exit code 0; archive {remote['SWARMSYNC_URL']}/jobs/{job.id}/result"],
                ("result", job.id): ["started"], ("logs", job.id): ["started"]}
    for words, shown in expected.items():
        printed, loaded = run_probe(COMMAND.format(words=list(words)), env, HEAVY + NOT_FOR_READING)
        assert all(line in printed for line in shown), (words, printed)
        assert not any(loaded.values()), f"{' '.join(words)} imported {[m for m, yes in loaded.items() if yes]}"


def test_what_a_job_says_is_shown_as_it_is_never_read_as_terminal_markup(stack, remote, busybox, tmp_path):
    """A job's command may hold square brackets (`[/x]`, `[bold]`): `jobs`, `schedule list` and `template list`
    show it as written, and one job's command cannot break or restyle another user's listing (Rich's markup used
    to read table cells: `[/x]` made `swarmsync jobs` fail with a MarkupError)."""
    operator, token = _user("operator")
    api = swarmsync.Client(remote["SWARMSYNC_URL"], token)
    words = ["echo", "[/oops]", "[bold]x[/bold]"]
    job = api.submit(busybox, words, at=datetime.now(UTC) + timedelta(days=1))
    name = f"brackets-{uuid.uuid4().hex[:6]}"
    api.create_schedule(name, swarmsync.JobSpec(image=busybox, command=words), every="1h", paused=True)
    api.save_template(name, swarmsync.JobSpec(image=busybox, command=words))
    env = {**remote, "SWARMSYNC_TOKEN": token, "COLUMNS": "1000"}  # no cell wraps, whatever else is listed
    try:
        for args in (["jobs", "--user", operator], ["schedule", "list"], ["template", "list"]):
            shown = cli(*args, env=env)
            assert shown.returncode == 0, (args, shown.stderr)
            assert "[/oops] [bold]x[/bold]" in shown.stdout, (args, shown.stdout)
    finally:
        api.cancel_job(job.id)
        api.change_schedule(name, "delete")
        api.delete_template(name)


def test_submit_rerun_and_follow_through_the_api_import_no_prefect(stack, remote, busybox, no_leftover_containers,
                                                                   tmp_path):
    """`swarmsync submit` (a job due tomorrow), `logs --follow` of a finished job and `rerun --wait` (which streams
    the new job's output and exits with its code) through the API: their job handles are `RemoteJob`s, which
    need no Prefect, so they start without it, nor pydantic-settings; `submit` without pydantic either: its
    options come from the option table and the server validates them, and a wrong one is named as a local
    check names it, exit code 2 (docs/benchmarks.md, CLI start)."""
    _, token = _user("operator")
    api = swarmsync.Client(remote["SWARMSYNC_URL"], token)
    finished = api.submit(busybox, ["echo", "first run"]).wait(120)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}, **remote,
           "SWARMSYNC_TOKEN": token, "SWARMSYNC_HOME": str(tmp_path), "COLUMNS": "200"}
    modules = (*HEAVY, "pydantic_settings")
    printed, loaded = run_probe(COMMAND.format(words=["submit", "--in", "1d", busybox, "true"]), env,
                                HEAVY + NOT_FOR_READING)
    later = api.get_job_summary(printed.strip().splitlines()[-1])
    api.cancel_job(later.id)
    assert later.state == "Scheduled" and later.scheduled > datetime.now(UTC) + timedelta(hours=23)
    assert not any(loaded.values()), f"submit imported {[m for m, yes in loaded.items() if yes]}"
    for words, shown in ((["logs", "--follow", finished.id], "first run"),
                         (["rerun", "--wait", finished.id], "first run")):
        printed, loaded = run_probe(COMMAND.format(words=words), env, modules)
        assert shown in printed, (words, printed)
        assert not any(loaded.values()), f"{' '.join(words)} imported {[m for m, yes in loaded.items() if yes]}"
    wrong = cli("submit", "--cpu", "-1", "--pull", "sometimes", busybox, "true", env=env)
    assert wrong.returncode == 2, wrong.stderr
    assert ("invalid job: cpu: Input should be greater than 0; pull_policy: Input should be 'always', "
            "'if-not-present' or 'never'") in wrong.stderr
    rerun = [row for row in api.list_job_summaries(limit=5) if row.id not in (finished.id, later.id)]
    assert rerun and rerun[0].state == "Completed" and rerun[0].exit_code == 0


def test_user_and_token_commands_follow_the_roles(stack, remote):
    admin, admin_token = _user("admin")
    operator, operator_token = _user("operator")
    as_admin = {**remote, "SWARMSYNC_TOKEN": admin_token}
    as_operator = {**remote, "SWARMSYNC_TOKEN": operator_token}

    denied = cli("user", "add", "intruder", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n",
                 env=as_operator)
    assert denied.returncode == 4 and "may not users:manage" in denied.stderr
    assert cli("user", "list", env=as_operator).returncode == 4
    assert cli("user", "set-role", operator, "admin", env=as_operator).returncode == 4

    listed = cli("user", "list", env=as_admin)
    assert listed.returncode == 0 and operator in listed.stdout
    assert cli("user", "set-role", operator, "viewer", env=as_admin).returncode == 0
    made = cli("token", "create", "nightly", "--scope", "jobs:read", env=as_operator)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("ssk_") and secret not in made.stderr
    token_id = made.stderr.split()[1]
    assert "nightly" in cli("token", "list", env=as_operator).stdout
    assert cli("whoami", env={**remote, "SWARMSYNC_TOKEN": secret}).returncode == 0
    assert cli("token", "revoke", token_id, env=as_operator).returncode == 0
    revoked = cli("whoami", env={**remote, "SWARMSYNC_TOKEN": secret})
    assert revoked.returncode == 4 and "token revoked" in revoked.stderr
    assert cli("user", "disable", operator, env=as_admin).returncode == 0
    gone = cli("whoami", env=as_operator)
    assert gone.returncode == 4 and "401" in gone.stderr

    api_log = (Path(stack["SWARMSYNC_HOME"]) / "logs" / "api.log").read_text()
    assert "POST /tokens" in api_log  # the log is there and has the requests...
    for token in (admin_token, operator_token, secret):
        assert token not in api_log  # ...but never a token


def test_schedule_and_template_commands_through_the_api_follow_the_roles(stack, remote, busybox,
                                                                         no_leftover_containers):
    from swarmsync import templates
    from swarmsync.deployments import schedules

    viewer, viewer_token = _user("viewer")
    operator, operator_token = _user("operator")
    as_viewer = {**remote, "SWARMSYNC_TOKEN": viewer_token}
    as_operator = {**remote, "SWARMSYNC_TOKEN": operator_token}
    template, name = f"t-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"  # short: rich tables wrap
    yearly = "0 3 1 1 *"  # never comes round during the test

    def refused(*args: str) -> None:
        ran = cli(*args, env=as_viewer)
        assert ran.returncode == 4, f"{args}: {ran.returncode} {ran.stdout} {ran.stderr}"
        assert "403" in ran.stderr and f"{viewer} (viewer) may not schedules:write" in ran.stderr, ran.stderr

    refused("template", "save", template, busybox, "--", "echo", "no")
    assert template not in templates.list_templates()
    saved = cli("template", "save", template, busybox, "--memory", "64m", "-e", "WHO=operator", "--",
                "sh", "-c", "echo from-$WHO", env=as_operator)
    assert saved.returncode == 0, saved.stderr
    assert templates.load_template(template).memory == "64m"
    assert template in cli("template", "list", env=as_viewer).stdout
    copies = cli("submit", "--count", "2", "--template", template, "-s", "PASS=hush", "-e", "MORE=1", "--",
                 "sh", "-c", "echo from-$WHO-$PASS-$MORE", env=as_operator)  # the template is read via the API
    assert copies.returncode == 0, copies.stderr
    for job_id in copies.stdout.split():
        assert swarmsync.get_job(job_id).wait(120).result().stdout == "from-operator-***-1\n"  # secret sent, masked

    refused("schedule", "create", name, "--cron", yearly, "--template", template)
    created = cli("schedule", "create", name, "--cron", yearly, "--paused", "--template", template, env=as_operator)
    assert created.returncode == 0, created.stderr
    assert name in created.stdout and "paused" in created.stdout
    on_server = schedules.get(name)
    assert on_server.paused and on_server.job["image"] == busybox and on_server.job["memory"] == "64m"
    bad = cli("schedule", "create", f"{name}-b", "--cron", "not a cron", busybox, "true", env=as_operator)
    assert bad.returncode == 2 and "error:" in bad.stderr and "cron" in bad.stderr.lower(), bad.stderr

    refused("schedule", "add", name, "--cron", "0 4 1 1 *")
    added = cli("schedule", "add", name, "--cron", "0 4 1 1 *", "-e", "WHO=weekly", env=as_operator)
    assert added.returncode == 0, added.stderr
    assert "own job parameters" in added.stdout
    assert len(schedules.get(name).schedules) == 2
    listed = cli("schedule", "list", env=as_viewer)
    assert listed.returncode == 0 and name in listed.stdout

    for action in ("resume", "pause", "run", "delete"):
        refused("schedule", action, name)
    assert schedules.get(name).paused
    assert cli("schedule", "resume", name, env=as_operator).returncode == 0
    assert not schedules.get(name).paused
    ran = cli("schedule", "run", name, env=as_operator)
    assert ran.returncode == 0, ran.stderr
    job = swarmsync.get_job(ran.stdout.strip()).wait(120)
    assert job.result().stdout == "from-operator\n"
    assert cli("schedule", "pause", name, env=as_operator).returncode == 0
    assert schedules.get(name).paused
    assert cli("schedule", "delete", name, env=as_operator).returncode == 0
    gone = cli("schedule", "delete", name, env=as_operator)
    assert gone.returncode == 2 and "no schedule named" in gone.stderr, gone.stderr

    refused("template", "delete", template)
    assert cli("template", "delete", template, env=as_operator).returncode == 0
    assert template not in templates.list_templates()
    audited = {e.action for e in audit.events(limit=200, actor=operator)}
    assert {"template.save", "schedule.create", "schedule.add", "schedule.resume", "schedule.run",
            "schedule.pause", "schedule.delete", "template.delete"} <= audited


def test_schedule_list_through_the_api_imports_no_prefect(stack, remote, busybox, tmp_path):
    """`swarmsync schedule list` through the API shows the schedule (its rows are `schedule_rows.RecurringJob`s,
    which need no Prefect) and starts without Prefect or the database (docs/benchmarks.md, CLI start)."""
    _, token = _user("operator")
    api = swarmsync.Client(remote["SWARMSYNC_URL"], token)
    name = f"start-{uuid.uuid4().hex[:8]}"
    api.create_schedule(name, swarmsync.JobSpec(image=busybox, command="echo tick"), every="1h", paused=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}, **remote,
           "SWARMSYNC_TOKEN": token, "SWARMSYNC_HOME": str(tmp_path), "COLUMNS": "200"}
    try:
        printed, loaded = run_probe(COMMAND.format(words=["schedule", "list"]), env)
    finally:
        api.change_schedule(name, "delete")
    assert name in printed and "paused" in printed, printed
    assert not any(loaded.values()), f"schedule list imported {[m for m, yes in loaded.items() if yes]}"


def test_cancel_and_delete_through_the_api_import_no_prefect(stack, remote, busybox, no_leftover_containers,
                                                             tmp_path):
    """`swarmsync cancel ID` (a job due tomorrow) and `delete ID` (a finished one) through the API act by job id,
    with no `Job` handle, and start without Prefect (docs/benchmarks.md, CLI start)."""
    _, token = _user("operator")
    api = swarmsync.Client(remote["SWARMSYNC_URL"], token)
    finished = api.submit(busybox, ["echo", "done"]).wait(120)
    later = api.submit(busybox, ["echo", "later"], at=datetime.now(UTC) + timedelta(days=1))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SWARMSYNC_", "PREFECT_"))}, **remote,
           "SWARMSYNC_TOKEN": token, "SWARMSYNC_HOME": str(tmp_path)}
    for words in (["cancel", later.id], ["delete", finished.id]):
        _, loaded = run_probe(COMMAND.format(words=words), env)
        assert not any(loaded.values()), f"{' '.join(words)} imported {[m for m, yes in loaded.items() if yes]}"
    with pytest.raises(swarmsync.JobNotFound):
        api.get_job_summary(finished.id)
    assert api.get_job_summary(later.id).state in ("Cancelling", "Cancelled")


def test_the_api_access_log_keeps_every_request_after_the_api_loads_prefects_flows(stack, remote, busybox):
    """Prefect sets up its logging once per process, when `prefect.main` is first imported (`from prefect import
    flow`): in the API that happened at the first request needing it (making a schedule), and it cleared
    uvicorn's access log handlers, so the API's access log showed no request after it. The API loads it before
    uvicorn sets up its logging (swarmsync/api/server.py)."""
    _, token = _user("operator")
    api = swarmsync.Client(remote["SWARMSYNC_URL"], token)
    name = f"log-{uuid.uuid4().hex[:8]}"
    api.create_schedule(name, swarmsync.JobSpec(image=busybox, command="echo tick"), every="1h", paused=True)
    try:
        marker = uuid.uuid4().hex
        api.list_job_summaries(limit=1, user=marker)  # a request after it, named in the access log by its query
        log = Path(stack["SWARMSYNC_HOME"]) / "logs" / "api.log"
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while marker not in log.read_text() and datetime.now(UTC) < deadline:
            time.sleep(0.5)
        assert marker in log.read_text(), "the API's access log stopped after it made a schedule"
    finally:
        api.change_schedule(name, "delete")
