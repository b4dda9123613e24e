"""Pipelines through the API: every step is admitted as a job of its submitter before anything
runs; a bad DAG is a 422 naming the field; a step reads only its own pipeline's outputs."""

from __future__ import annotations

from tests.accounts.conftest import auth
from tests.security.test_secrets import LATER, a_job_with_a_secret, cancel, two_operators  # noqa: F401


def _pipelines_of(api, token: str) -> list[dict]:
    response = api.get("/pipelines", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_step_with_another_users_secret_is_refused_before_anything_runs(api, two_operators, busybox):  # noqa: F811
    alice, bob = two_operators
    job_id, block = a_job_with_a_secret(api, alice, busybox)
    try:
        before = _pipelines_of(api, bob)
        attack = {"pipeline": {"name": "steal", "steps": {
            "harmless": {"image": busybox, "command": "true", "pull_policy": "never"},
            "leak": {"image": busybox, "command": "echo $X", "pull_policy": "never", "needs": ["harmless"],
                     "secrets": {"X": block}}}}, "at": LATER}
        response = api.post("/pipelines", json=attack, headers=auth(bob))
        assert response.status_code == 403, response.text
        assert "X" in response.json()["detail"] and "secret" in response.json()["detail"]
        assert _pipelines_of(api, bob) == before  # no pipeline, no step: refused whole
        bobs_jobs = api.get("/jobs", headers=auth(bob)).json()
        assert not [j for j in bobs_jobs if j["user"] == bobs_name(api, bob)]
    finally:
        cancel(api, alice, job_id)


def bobs_name(api, token: str) -> str:
    return api.get("/me", headers=auth(token)).json()["username"]


def test_cycles_unknown_needs_and_other_pipelines_outputs_are_422(api, two_operators, busybox):  # noqa: F811
    _alice, bob = two_operators
    before = _pipelines_of(api, bob)
    step = {"image": busybox, "command": "true", "pull_policy": "never"}
    cases = {
        "steps.a.needs": {"a": {**step, "needs": ["b"]}, "b": {**step, "needs": ["a"]}},
        "steps.x.needs": {"x": {**step, "needs": ["nowhere"]}},
        # a step names only steps of its own pipeline: another pipeline's outputs cannot be named at all
        "steps.y.inputs_from": {"y": {**step, "inputs_from": {"fetch-of-another-pipeline": "/in"}}},
    }
    for where, steps in cases.items():
        response = api.post("/pipelines", json={"pipeline": {"name": "bad", "steps": steps}, "at": LATER},
                            headers=auth(bob))
        assert response.status_code == 422, response.text
        assert [e["loc"] for e in response.json()["errors"]] == [["body", f"pipeline.{where}"]], response.text
    assert _pipelines_of(api, bob) == before


def test_pipeline_tags_in_a_job_spec_are_dropped(api, two_operators, busybox):  # noqa: F811
    """A job cannot pass itself off as a step of someone's pipeline (the parent finds its steps by tag)."""
    _alice, bob = two_operators
    response = api.post("/jobs", json={"spec": {"image": busybox, "command": "true", "pull_policy": "never",
                                                "tags": ["swarmsync.pipeline:x", "swarmsync.step:fetch", "mine"]},
                                       "at": LATER}, headers=auth(bob))
    assert response.status_code == 201, response.text
    tags = response.json()["tags"]
    assert "mine" in tags and not [t for t in tags if t.startswith(("swarmsync.pipeline:", "swarmsync.step:"))]
    cancel(api, bob, response.json()["id"])
