"""Usage and budgets (issue 27): what a job's container used, measured on the session stack's worker,
read back through the API and `swarmsync usage`, summed per user and project, readable only by the
projects' members; a project's monthly CPU-hours budget refuses its next job, saying why.

Three real jobs run once for the module, at the same time: in project P, operator A's job that
burns 2 CPU-seconds and holds 200 MiB, and A's `echo`; in project Q, operator X's `echo`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarmsync.auth import projects, tokens, users
from swarmsync.auth.roles import Principal
from swarmsync.client import APIError, Client
from tests.accounts.conftest import PASSWORD
from tests.accounts.test_cli_accounts import cli

pytestmark = pytest.mark.stack

MIB200 = 200 * 1024 * 1024
# 200 MiB held at once (dd's one block, every page written), then a busy loop until the shell's own CPU
# time (utime + stime, /proc/$$/stat fields 14-15, in 1/100 s) reaches 2 s; last, the truth the kernel
# counted for the shell and its reaped children (dd): fields 14-17.
BURN = ("dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; "
        "while :; do read -r l < /proc/$$/stat; set -- $l; [ $(( ${14} + ${15} )) -ge 200 ] && break; done; "
        "read -r l < /proc/$$/stat; set -- $l; echo cpu_ticks $(( ${14} + ${15} + ${16} + ${17} ))")


@dataclass
class Ran:
    p: str
    q: str
    url: str
    tokens: dict[str, str]  # "a", "x", "admin"
    users: dict[str, str]
    manifests: dict[str, dict]  # "burn", "echo" (A's, in P), "other" (X's, in Q)
    burn_output: str
    config: Path  # the CLI's config folder: no stored login or project

    def client(self, who: str) -> Client:
        return Client(self.url, self.tokens[who])

    def env(self, who: str) -> dict[str, str]:
        return {"SWARMSYNC_URL": self.url, "SWARMSYNC_TOKEN": self.tokens[who],
                "SWARMSYNC_CONFIG_DIR": str(self.config)}


@pytest.fixture(scope="module")
def ran(stack, busybox, tmp_path_factory) -> Ran:
    local = Principal.local()
    p, q = f"use-p-{uuid.uuid4().hex[:6]}", f"use-q-{uuid.uuid4().hex[:6]}"
    projects.create_project(local, p)
    projects.create_project(local, q)
    names, secrets = {}, {}
    for who, role, project in (("a", "operator", p), ("x", "operator", q), ("admin", "admin", None)):
        names[who] = f"use-{who}-{uuid.uuid4().hex[:6]}"
        users.add_user(local, names[who], PASSWORD, role)
        if project:
            projects.set_member(local, project, names[who], "operator")
        secrets[who] = tokens.create_token(local, "usage-test", names[who]).token
    url = f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}"
    a, x = Client(url, secrets["a"]), Client(url, secrets["x"])
    jobs = {"burn": a.submit(busybox, ["sh", "-c", BURN], project=p, memory="512m", pull_policy="never"),
            "echo": a.submit(busybox, "echo hi", project=p, pull_policy="never"),
            "other": x.submit(busybox, "echo hi", project=q, pull_policy="never")}
    manifests = {}
    for name, job in jobs.items():
        job.wait(300)
        result = job.result()
        assert result.state == "COMPLETED", result.message
        manifests[name] = result.manifest
    burn_output = a.get_job(jobs["burn"].id).result().output_bytes("stdout.txt").decode()
    return Ran(p, q, url, secrets, names, manifests, burn_output, tmp_path_factory.mktemp("usage-cli"))


def test_a_job_burning_two_cpu_seconds_and_holding_200_mib_reports_both_within_ten_percent(ran):
    usage = ran.manifests["burn"]["usage"]
    truth = int(ran.burn_output.split("cpu_ticks")[1].split()[0]) / 100  # what the kernel counted, in s
    assert truth >= 2.0
    assert abs(usage["cpu_seconds"] - truth) <= 0.1 * truth, (usage, truth)
    assert abs(usage["memory_peak_bytes"] - MIB200) <= 0.1 * MIB200, usage
    assert usage["source"] == "cgroup"  # this worker shares the engine's host: the container's own cgroup
    assert usage["wall_seconds"] >= usage["cpu_seconds"] * 0.9  # one core: the wall time holds the CPU time
    small = ran.manifests["echo"]["usage"]
    assert small["memory_peak_bytes"] < 0.1 * MIB200 and small["cpu_seconds"] < 0.5 * truth


def test_usage_sums_each_users_jobs_per_project_and_user(ran):
    mine = cli("usage", "--project", ran.p, "--by", "user", "--json", env=ran.env("a"))
    assert mine.returncode == 0, mine.stderr
    rows = json.loads(mine.stdout)
    expected = ran.manifests["burn"]["usage"]["cpu_seconds"] + ran.manifests["echo"]["usage"]["cpu_seconds"]
    assert [(r["key"], r["jobs"]) for r in rows] == [(ran.users["a"], 2)]
    assert rows[0]["cpu_seconds"] == pytest.approx(expected, abs=0.002)
    assert rows[0]["memory_peak_bytes"] == ran.manifests["burn"]["usage"]["memory_peak_bytes"]  # the largest job's
    by_project = {r["key"]: r for r in ran.client("admin").usage("project", since="1d")}
    assert by_project[ran.p]["jobs"] == 2 and by_project[ran.q]["jobs"] == 1
    assert by_project[ran.q]["cpu_seconds"] == pytest.approx(ran.manifests["other"]["usage"]["cpu_seconds"],
                                                             abs=0.002)
    table = cli("usage", "--by", "project", env=ran.env("admin"))
    assert ran.p in table.stdout and ran.q in table.stdout


def test_a_user_cannot_read_the_usage_of_a_project_they_are_not_in(ran):
    with pytest.raises(APIError) as hidden:
        ran.client("x").usage("user", project=ran.p)
    assert hidden.value.status == 404
    theirs = [r["key"] for r in ran.client("x").usage("project")]  # all of theirs: Q (and the default project,
    assert ran.q in theirs and ran.p not in theirs                  # which every user is in), never P
    assert ran.users["a"] not in {r["key"] for r in ran.client("x").usage("user")}
    refused = cli("usage", "--project", ran.p, env=ran.env("x"))
    assert refused.returncode != 0 and "no project named" in refused.stderr
    with pytest.raises(APIError) as budget:
        ran.client("x").budget(ran.p)
    assert budget.value.status == 404


def test_a_project_past_its_monthly_cpu_hours_budget_refuses_its_next_job_saying_why(ran, busybox):
    refused_set = cli("project", "budget", ran.p, "--cpu-hours", "0.0001", env=ran.env("a"))
    assert refused_set.returncode == 4 and "403" in refused_set.stderr  # only admins set budgets
    done = cli("project", "budget", ran.p, "--cpu-hours", "0.0001", env=ran.env("admin"))
    assert done.returncode == 0, done.stderr
    assert "budget 0.0001 CPU-hours a month" in done.stdout
    try:
        with pytest.raises(APIError) as refused:
            ran.client("a").submit(busybox, "echo over", project=ran.p, pull_policy="never")
        assert refused.value.status == 403
        message = str(refused.value)
        assert f"project {ran.p} used 0.00" in message and "of its 0.0001 CPU-hours this month (resets 20" in message
        assert ran.client("a").budget(ran.p)["used_cpu_hours"] > 0.0001
        assert ran.client("x").budget(ran.q)["cpu_hours"] is None  # the cap is P's alone
    finally:
        assert ran.client("admin").set_budget(ran.p, None)["cpu_hours"] is None
