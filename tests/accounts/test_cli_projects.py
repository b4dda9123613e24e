"""Projects through the command line and the Python client, against the stack's own API process:
`swarmsync project ...` on the server host and through the API, `--project` on the job, schedule
and template commands, `project use`, `user add --project`, `rerun` and `delete`; and
`swarmsync.Client(..., project=)`: its jobs land in its project, and nobody outside sees them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import swarmsync
from swarmsync.auth import projects, tokens, users
from swarmsync.auth.roles import Principal
from tests.accounts.conftest import PASSWORD
from tests.accounts.test_cli_accounts import cli, process

YEARLY = "0 3 1 1 *"  # never comes round during a test


def new_project() -> str:
    name = f"p{uuid.uuid4().hex[:6]}"  # short: rich tables wrap long cells
    projects.create_project(Principal.local(), name)
    return name


def new_user(role: str, project: str | None = None, project_role: str = "operator") -> tuple[str, str]:
    """A user (in the default project, and in `project` with `project_role`) and an API token for them."""
    name = f"u{role[:2]}{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, PASSWORD, role)
    if project:
        projects.set_member(Principal.local(), project, name, project_role)
    return name, tokens.create_token(Principal.local(), "cli", name).token


@pytest.fixture
def api_url(stack) -> str:
    return f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}"


@pytest.fixture
def remote(api_url, tmp_path) -> dict[str, str]:
    """Env for a CLI user on another machine: the API URL and a config dir of their own."""
    return {"SWARMSYNC_URL": api_url, "SWARMSYNC_CONFIG_DIR": str(tmp_path / "config")}


def test_project_commands_on_the_server_host_and_through_the_api(stack, remote, tmp_path):
    project = f"p{uuid.uuid4().hex[:6]}"
    local = {"SWARMSYNC_CONFIG_DIR": str(tmp_path / "local-config")}  # no SWARMSYNC_URL: the server host
    made = cli("project", "create", project, "--description", "the data team", env=local)
    assert made.returncode == 0, made.stderr
    assert projects.exists(project)
    again = cli("project", "create", project, env=local)
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = cli("project", "create", "Not_A_Name", env=local)
    assert bad.returncode == 2 and "not valid" in bad.stderr

    alone = f"ual{uuid.uuid4().hex[:6]}"
    added = cli("user", "add", alone, "--role", "operator", "--no-default-project", "--project", project,
                "--project-role", "maintainer", "--password-stdin", stdin=PASSWORD + "\n", env=local)
    assert added.returncode == 0, added.stderr
    assert f"{alone} is maintainer in project {project}" in added.stderr
    assert {(m.username, m.role) for m in projects.list_members(Principal.local(), project)} == {
        (alone, "maintainer")}
    assert all(m.username != alone for m in projects.list_members(Principal.local(), "default"))

    maintainer = {**remote, "SWARMSYNC_TOKEN": tokens.create_token(Principal.local(), "cli", alone).token}
    listed = cli("project", "list", env=maintainer)
    assert listed.returncode == 0, listed.stderr
    assert project in listed.stdout and "maintainer" in listed.stdout and "default" not in listed.stdout
    hidden = cli("project", "members", "default", env=maintainer)
    assert hidden.returncode == 4 and "404" in hidden.stderr  # not a member: as if it did not exist

    other, _ = new_user("viewer")
    assert cli("project", "add-member", project, other, "--role", "viewer", env=maintainer).returncode == 0
    members = cli("project", "members", project, env=maintainer)
    assert other in members.stdout and alone in members.stdout
    operator, operator_token = new_user("operator", project, "operator")
    as_operator = {**remote, "SWARMSYNC_TOKEN": operator_token}
    refused = cli("project", "add-member", project, operator, "--role", "maintainer", env=as_operator)
    assert refused.returncode == 4 and "403" in refused.stderr and "maintainers and admins" in refused.stderr
    assert cli("project", "create", f"{project}-x", env=maintainer).returncode == 4  # admins create projects
    assert cli("project", "remove-member", project, other, env=maintainer).returncode == 0
    assert other not in cli("project", "members", project, env=maintainer).stdout

    # through the API, a new user's projects are set as on the server host
    admin = {**remote, "SWARMSYNC_TOKEN": new_user("admin")[1]}
    remote_user = f"ure{uuid.uuid4().hex[:6]}"
    through_api = cli("user", "add", remote_user, "--role", "operator", "--no-default-project", "--project",
                      project, "--password-stdin", stdin=PASSWORD + "\n", env=admin)
    assert through_api.returncode == 0, through_api.stderr
    assert [(m.project, m.role) for m in projects.list_members(Principal.local(), project)
            if m.username == remote_user] == [(project, "operator")]
    assert all(m.username != remote_user for m in projects.list_members(Principal.local(), "default"))

    # `project use` keeps the choice beside the stored login; --clear forgets it
    chosen = cli("project", "use", project, env=maintainer)
    assert chosen.returncode == 0, chosen.stderr
    stored = json.loads((Path(remote["SWARMSYNC_CONFIG_DIR"]) / "credentials.json").read_text())
    assert stored["project"] == project
    assert "*" in cli("project", "list", env=maintainer).stdout
    unknown = cli("project", "use", "default", env=maintainer)  # not theirs
    assert unknown.returncode == 2 and "no project named 'default'" in unknown.stderr
    assert cli("project", "use", "--clear", env=maintainer).returncode == 0
    assert "project" not in json.loads((Path(remote["SWARMSYNC_CONFIG_DIR"]) / "credentials.json").read_text())

    gone = cli("project", "delete", project, env=local)
    assert gone.returncode == 0, gone.stderr
    assert not projects.exists(project)
    assert cli("project", "delete", "default", env=local).returncode == 2  # the default project stays


def test_project_option_routes_jobs_schedules_and_templates(stack, remote, busybox, no_leftover_containers,
                                                            tmp_path):
    from swarmsync import templates
    from swarmsync.deployments import schedules

    project = new_project()
    member, member_token = new_user("operator", project)
    outsider, outsider_token = new_user("operator")  # the default project only
    as_member = {**remote, "SWARMSYNC_TOKEN": member_token}
    as_outsider = {**remote, "SWARMSYNC_TOKEN": outsider_token}

    ran = cli("submit", "--project", project, "--wait", busybox, "--", "sh", "-c", "echo in-project", env=as_member)
    assert ran.returncode == 0, ran.stderr
    job_id = ran.stderr.split()[1]
    assert swarmsync.get_job(job_id).project == project
    assert job_id in cli("jobs", "-P", project, env=as_member).stdout
    assert job_id not in cli("jobs", "-P", "default", env=as_member).stdout
    host = {"SWARMSYNC_CONFIG_DIR": str(tmp_path / "host")}  # no SWARMSYNC_URL, no login: the server host
    assert job_id in cli("jobs", "--project", project, env=host).stdout  # its view, too
    wide = process("jobs", "-P", project, env={**as_member, "COLUMNS": "240"})
    assert wide.returncode == 0 and f"{project}" in wide.stdout.split(job_id)[0].splitlines()[-1]  # the column
    assert job_id not in cli("jobs", "--limit", "200", env=as_outsider).stdout
    unseen = cli("status", job_id, env=as_outsider)
    assert unseen.returncode == 2 and "no job" in unseen.stderr
    refused = cli("submit", "-P", project, busybox, "true", env=as_outsider)
    assert refused.returncode == 4 and "404" in refused.stderr

    again = cli("rerun", job_id, "--wait", env=as_member)
    assert again.returncode == 0, again.stderr
    rerun_id = again.stderr.split()[1]
    assert rerun_id != job_id and swarmsync.get_job(rerun_id).project == project
    assert cli("rerun", job_id, env=as_outsider).returncode == 2  # not theirs to see
    assert cli("delete", job_id, env=as_outsider).returncode == 2
    for done in (job_id, rerun_id):
        deleted = cli("delete", done, env=as_member)
        assert deleted.returncode == 0, deleted.stderr
        with pytest.raises(swarmsync.jobs.JobNotFound):
            swarmsync.get_job(done)

    name = f"s{uuid.uuid4().hex[:6]}"
    made = cli("schedule", "create", name, "-P", project, "--cron", YEARLY, "--paused", busybox, "true",
               env=as_member)
    assert made.returncode == 0, made.stderr
    assert f"of project {project}" in made.stdout
    assert schedules.get(name, project).owner == member
    assert name in cli("schedule", "list", "-P", project, env=as_member).stdout
    assert name not in cli("schedule", "list", "-P", "default", env=as_member).stdout
    assert name not in cli("schedule", "list", env=as_outsider).stdout
    missing = cli("schedule", "resume", name, env=as_member)  # the default project has no such schedule
    assert missing.returncode == 2 and "no schedule named" in missing.stderr, missing.stderr
    assert cli("schedule", "resume", name, "-P", project, env=as_member).returncode == 0
    assert cli("schedule", "pause", name, "-P", project, env=as_member).returncode == 0
    assert cli("schedule", "delete", name, "-P", project, env=as_member).returncode == 0

    template = f"t{uuid.uuid4().hex[:6]}"
    saved = cli("template", "save", template, "-P", project, busybox, "-e", "WHO=tpl", "--", "sh", "-c",
                "echo from-$WHO", env=as_member)
    assert saved.returncode == 0, saved.stderr
    assert templates.load_template(template, project).owner == member
    assert template in cli("template", "list", "-P", project, env=as_member).stdout
    assert template not in cli("template", "list", env=as_outsider).stdout
    from_template = cli("submit", "-P", project, "--wait", "--template", template, env=as_member)  # read via the API
    assert from_template.returncode == 0, from_template.stderr
    assert "from-tpl" in from_template.stdout
    assert cli("template", "delete", template, "-P", project, env=as_member).returncode == 0
    assert templates.find_template(template, project) is None


def test_project_use_and_swarmsync_project_choose_the_project_of_later_commands(stack, remote, busybox):
    project = new_project()
    _, token = new_user("operator", project)
    as_member = {**remote, "SWARMSYNC_TOKEN": token}
    assert cli("project", "use", project, env=as_member).returncode == 0
    later = cli("submit", "--in", "1h", busybox, "true", env=as_member)
    assert later.returncode == 0, later.stderr
    job = swarmsync.get_job(later.stdout.strip())
    assert job.project == project
    assert job.id in cli("jobs", env=as_member).stdout  # only the project in use...
    assert job.id not in cli("jobs", "-P", "default", env=as_member).stdout
    assert job.id in cli("jobs", "--all-projects", env=as_member).stdout  # ...unless all are asked for
    elsewhere = cli("submit", "--in", "1h", busybox, "true", env={**as_member, "SWARMSYNC_PROJECT": "default"})
    assert swarmsync.get_job(elsewhere.stdout.strip()).project == "default"  # the setting wins over `use`
    for job_id in (job.id, elsewhere.stdout.strip()):
        assert cli("cancel", job_id, env=as_member).returncode == 0
        assert cli("delete", job_id, env=as_member).returncode == 0


def test_a_client_with_a_project_submits_there_and_other_projects_cannot_see_it(stack, api_url, busybox,
                                                                                 no_leftover_containers):
    from swarmsync.client import ALL_PROJECTS, APIError, Client

    project = new_project()
    _, member_token = new_user("operator", project)
    _, outsider_token = new_user("operator")
    member = Client(api_url, member_token, project=project)
    outsider = Client(api_url, outsider_token)

    job = member.submit(busybox, ["sh", "-c", "echo client-project"], pull_policy="never")
    assert job.wait(120).result().output == "client-project\n"
    assert job.row().project == project and swarmsync.get_job(job.id).project == project
    assert [row.project for row in member.list_jobs()] == [project]  # the client's project only
    assert job.id not in {row.id for row in member.list_jobs(project="default")}
    assert job.id in {row.id for row in member.list_jobs(project=ALL_PROJECTS)}
    with pytest.raises(swarmsync.jobs.JobNotFound):
        outsider.get_job(job.id)
    assert job.id not in {row.id for row in outsider.list_jobs(limit=200)}
    with pytest.raises(APIError, match="404"):
        outsider.submit(busybox, "true", project=project)

    template = f"t{uuid.uuid4().hex[:6]}"
    saved = member.save_template(template, swarmsync.JobSpec(image=busybox, command="echo from-template",
                                                             pull_policy="never"))
    assert (saved["name"], saved["project"]) == (template, project)
    assert f"{project}--{template}" in member.templates()
    again = member.submit(template=template, image=None).wait(120)
    assert again.result().output == "from-template\n"
    member.delete_template(template)
    assert member.templates() == {}

    rerun = job.rerun().wait(120)
    assert rerun.id != job.id and rerun.row().project == project
    for done in (job, rerun, again):
        done.delete()
        with pytest.raises(swarmsync.jobs.JobNotFound):
            member.get_job(done.id)
    assert [p["name"] for p in member.projects()] == sorted(["default", project])
