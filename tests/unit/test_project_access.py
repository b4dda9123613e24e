"""The routes' project rules (`swarmsync.api.project_access`) as pure logic: which projects a list reads,
and who may read or change a run by its id (a real `Job` over a Prefect `FlowRun` object, no server).
tests/security/test_authorization_matrix.py checks the same rules through every route."""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun

from swarmsync.api.project_access import RunKind, listed_projects
from swarmsync.auth import Forbidden, Principal, Role
from swarmsync.jobs import Job, JobNotFound
from swarmsync.owners import project_tag, user_tag


def member(name: str, **roles: str) -> Principal:
    return Principal(username=name, role=Role.OPERATOR, memberships=tuple(roles.items()))


def test_a_list_reads_the_callers_projects_or_the_one_asked_for_and_nothing_of_a_project_not_theirs():
    ann = member("ann", red="operator", blue="viewer")
    assert listed_projects(ann, None) == ["blue", "red"]
    assert listed_projects(ann, "red") == ["red"]
    assert listed_projects(ann, "green") == []
    admin = Principal(username="root", role=Role.ADMIN)
    assert listed_projects(admin, None) is None  # all
    assert listed_projects(admin, "green") == ["green"]


def test_a_run_is_not_found_outside_the_callers_projects_and_changed_by_its_submitter_or_a_maintainer():
    run = FlowRun(id=uuid4(), flow_id=uuid4(), tags=[project_tag("red"), user_tag("ann")])

    class HeldJob(Job):  # the run as read, without a Prefect server
        def flow_run(self):
            self._flow_run = run
            return run

    jobs = RunKind(HeldJob)
    run_id = str(run.id)

    with pytest.raises(JobNotFound, match=f"^no job with id {run_id}$"):
        jobs.readable(member("eve", blue="maintainer"), run_id)
    assert jobs.readable(member("val", red="viewer"), run_id).id == run_id
    assert jobs.changeable(member("ann", red="operator"), run_id).id == run_id
    assert jobs.changeable(member("max", red="maintainer"), run_id).id == run_id
    with pytest.raises(Forbidden, match=f"bob may not change job {run_id}: it is ann's"):
        jobs.changeable(member("bob", red="operator"), run_id)
    with pytest.raises(JobNotFound):
        jobs.changeable(member("eve", blue="maintainer"), run_id)
