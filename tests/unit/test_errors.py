"""One error family: every exception SwarmSync defines is a `swarmsync.Error`, by meaning, and
still the standard exception it was before; one table maps the family to HTTP statuses
(`swarmsync.api.errors.STATUS`), one to CLI exit codes (`swarmsync.cli.console.EXIT_CODES`).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import swarmsync
from swarmsync.api import errors as api_errors
from swarmsync.cli import console
from swarmsync.errors import KINDS, ConflictError, Error, InvalidError, NotFoundError, RefusedError, UnavailableError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
NOT_IMPORTED = ("swarmsync.db.migrations", "swarmsync.dashboard.views")  # Alembic scripts; Streamlit pages (run)


@cache
def project_exceptions() -> frozenset[type[BaseException]]:
    """Every exception class of an installed `swarmsync` module: module-level ones found by walking the
    packages, and (after importing them all) any other subclass defined there, nested ones included."""
    found: set[type[BaseException]] = set()
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if info.name.startswith(NOT_IMPORTED):
                continue
            for value in vars(importlib.import_module(info.name)).values():
                if inspect.isclass(value) and issubclass(value, BaseException):
                    found.add(value)
    pending = [BaseException]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found.add(cls)
    return frozenset(cls for cls in found if cls.__module__.split(".")[0] == "swarmsync")


# What each exception derived from before the family: `except ValueError` (etc.) written then still catches it.
STDLIB_BASES: dict[str, type[BaseException]] = {
    "swarmsync.deployments.pipeline_schedules.PipelineScheduleNotFound": LookupError,
    "swarmsync.deployments.pipeline_schedules.PipelineScheduleConflict": ValueError,
    "swarmsync.deployments.pools.PolicyError": ValueError,
    "swarmsync.deployments.ports.PortTaken": RuntimeError,
    "swarmsync.deployments.schedule_rules.ScheduleError": ValueError,
    "swarmsync.deployments.schedules.ScheduleNotFound": LookupError,
    "swarmsync.deployments.schedules.ScheduleConflict": ValueError,
    "swarmsync.deployments.stack.StackError": RuntimeError,
    "swarmsync.flows.container_job.JobFailed": RuntimeError,
    "swarmsync.flows.pipeline.StepFailed": RuntimeError,
    "swarmsync.api.errors.FieldErrors": ValueError,
    "swarmsync.archive.errors.ArchiveNotFound": LookupError,
    "swarmsync.archive.errors.ArchiveCorrupt": RuntimeError,
    "swarmsync.archive.errors.ArchiveStoreError": RuntimeError,
    "swarmsync.archive.staging.ChunkCorrupt": ValueError,
    "swarmsync.archive.staging.ManifestInvalid": ValueError,
    "swarmsync.auth.projects.ProjectError": ValueError,
    "swarmsync.auth.projects.ProjectNotFound": LookupError,
    "swarmsync.auth.projects.MemberNotFound": LookupError,
    "swarmsync.auth.ssh_keys.KeyNotFound": LookupError,
    "swarmsync.auth.sshsig.KeyFormatError": ValueError,
    "swarmsync.auth.sshsig.SignatureError": ValueError,
    "swarmsync.auth.tokens.TokenNotFound": LookupError,
    "swarmsync.auth.account_errors.AccountError": ValueError,
    "swarmsync.auth.account_errors.UserNotFound": LookupError,
    "swarmsync.auth.worker_tokens.WorkerTokenError": ValueError,
    "swarmsync.auth.worker_tokens.WorkerTokenNotFound": LookupError,
    "swarmsync.client.APIError": RuntimeError,
    "swarmsync.client.APIInputError": ValueError,
    "swarmsync.client.APINotFound": LookupError,
    "swarmsync.compose.ComposeError": ValueError,
    "swarmsync.core_link.CoreRefused": RuntimeError,
    "swarmsync.docker_runner.JobRefused": RuntimeError,
    "swarmsync.gateway.scope.NotYours": LookupError,
    "swarmsync.images.ImageUnavailable": RuntimeError,
    "swarmsync.job_errors.JobNotFound": LookupError,
    "swarmsync.pipeline_inputs.HandoffError": RuntimeError,
    "swarmsync.pipeline_spec.PipelineError": ValueError,
    "swarmsync.pipelines.PipelineNotFound": LookupError,
    "swarmsync.pipelines.PipelineConflict": RuntimeError,
    "swarmsync.policy.PolicyViolation": ValueError,
    "swarmsync.policy.PoolNotFound": LookupError,
    "swarmsync.prefect_internals.PrefectInternalsChanged": RuntimeError,
    "swarmsync.spec.JobSpecError": ValueError,
    "swarmsync.sshsign.SigningError": RuntimeError,
    "swarmsync.templates.TemplateNotFound": LookupError,
    "swarmsync.timing.TimingError": ValueError,
    "swarmsync.tls_errors.TLSError": ValueError,
}


def named(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def blank(cls: type[BaseException]) -> BaseException:
    """An instance without running `__init__` (some take fields): the maps read only its type."""
    return cls.__new__(cls)


def test_every_exception_the_project_defines_is_a_swarmsync_error():
    classes = project_exceptions()
    assert len(classes) >= 60, sorted(map(named, classes))  # the walk found the project's modules
    outside = sorted(named(cls) for cls in classes if not issubclass(cls, Error))
    assert outside == [], f"derive these from swarmsync.Error (or a kind of it, swarmsync/errors.py): {outside}"


def test_every_exception_keeps_the_standard_base_callers_catch():
    classes = {named(cls): cls for cls in project_exceptions()}
    assert set(STDLIB_BASES) <= set(classes), set(STDLIB_BASES) - set(classes)
    lost = [name for name, base in STDLIB_BASES.items() if not issubclass(classes[name], base)]
    assert lost == []


def test_the_family_and_its_kinds_are_public_names():
    for cls in (Error, *KINDS):
        assert getattr(swarmsync, cls.__name__) is cls and cls.__name__ in swarmsync.__all__
    assert set(KINDS) == {NotFoundError, RefusedError, InvalidError, ConflictError, UnavailableError}


def test_each_kind_has_its_http_status():
    assert {cls: api_errors.STATUS[cls] for cls in (Error, *KINDS)} == {
        Error: 500, NotFoundError: 404, RefusedError: 403, InvalidError: 400, ConflictError: 409, UnavailableError: 503}


def test_each_kind_has_its_exit_code():
    assert {cls: console.EXIT_CODES[cls] for cls in (Error, *KINDS)} == {
        Error: 1, NotFoundError: 2, RefusedError: 4, InvalidError: 2, ConflictError: 2, UnavailableError: 3}


@pytest.mark.parametrize(("name", "status", "code"), [
    ("swarmsync.job_errors.JobNotFound", 404, 2),
    ("swarmsync.gateway.scope.NotYours", 404, 2),
    ("swarmsync.auth.roles.Unauthenticated", 401, 4),
    ("swarmsync.auth.roles.Forbidden", 403, 4),
    ("swarmsync.policy.PolicyViolation", 403, 4),  # a Forbidden and a JobSpecError: the refusal wins
    ("swarmsync.auth.ratelimit.LockedOut", 429, 4),
    ("swarmsync.spec.JobSpecError", 400, 2),
    ("swarmsync.api.errors.FieldErrors", 422, 2),
    ("swarmsync.archive.staging.ChunkCorrupt", 422, 2),
    ("swarmsync.deployments.schedules.ScheduleConflict", 409, 2),  # a ScheduleError too: the conflict wins
    ("swarmsync.archive.errors.ArchiveStoreError", 503, 3),
    ("swarmsync.archive.errors.ArchiveCorrupt", 502, 1),
    ("swarmsync.flows.container_job.JobFailed", 500, 1),
    ("swarmsync.client.APIInputError", 400, 4),  # the API said no: 4, as before the family
])
def test_the_maps_answer_each_exception_by_its_most_specific_class(name, status, code):
    cls = {named(cls): cls for cls in project_exceptions()}[name]
    assert (api_errors.status_of(blank(cls)), console.exit_code(blank(cls))) == (status, code)


def test_every_project_exception_gets_a_status_and_an_exit_code_of_the_tables():
    for cls in project_exceptions():
        assert api_errors.status_of(blank(cls)) in api_errors.STATUS.values(), named(cls)
        assert console.exit_code(blank(cls)) in console.EXIT_CODES.values(), named(cls)


def test_a_route_raising_a_family_error_is_answered_by_the_one_handler():
    """FastAPI routing and `errors.install`, as `create_app` sets them up (no database: no route of the
    real app answers without one, tests/accounts and tests/archives go through those)."""
    from swarmsync.auth.ratelimit import LockedOut
    from swarmsync.auth.roles import Unauthenticated
    from swarmsync.jobs import JobNotFound
    from swarmsync.templates import TemplateConflict

    raised: dict[str, BaseException] = {
        "missing": JobNotFound("no job abc"),
        "refused": RefusedError("not yours to run"),
        "invalid": InvalidError("x" * 3000),
        "fields": api_errors.FieldErrors({"cpus": "must be > 0"}),
        "taken": TemplateConflict("template t is bob's"),
        "down": UnavailableError("the store does not answer"),
        "anonymous": Unauthenticated("no token"),
        "locked": LockedOut("too many failed logins for user 'alice': wait 30 s", retry_after=30),
        "failed": Error("a step failed"),
    }
    app = FastAPI()
    api_errors.install(app)

    @app.get("/raise/{what}")
    def raise_it(what: str) -> None:
        raise raised[what]

    client = TestClient(app, raise_server_exceptions=False)
    answers = {what: client.get(f"/raise/{what}") for what in raised}
    assert {what: answer.status_code for what, answer in answers.items()} == {
        "missing": 404, "refused": 403, "invalid": 400, "fields": 422, "taken": 409, "down": 503,
        "anonymous": 401, "locked": 429, "failed": 500}
    assert answers["missing"].json() == {"detail": "no job abc"}
    assert answers["invalid"].json() == {"detail": "x" * 2000}  # 400 bodies are cut, as before
    assert answers["fields"].json() == {"detail": "cpus: must be > 0",
                                        "errors": [{"loc": ["body", "cpus"], "msg": "must be > 0"}]}
    assert answers["anonymous"].headers["WWW-Authenticate"] == "Bearer"
    assert answers["locked"].headers["Retry-After"] == "30"


def test_a_command_raising_a_family_error_prints_one_line_and_exits_with_its_code():
    """`OneLineErrors` (the root of `swarmsync`) over a command of each kind, and a real one: `submit --at` with
    a time that is not one raises `TimingError` from the core, which no command catches any more."""
    import typer
    from typer.testing import CliRunner

    from swarmsync.cli.main import OneLineErrors, app
    from swarmsync.client import APIInputError

    raised: dict[str, BaseException] = {
        "missing": NotFoundError("no job abc"), "invalid": InvalidError("bad cron"), "taken": ConflictError("taken"),
        "down": UnavailableError("the store does not answer"), "refused": RefusedError("not yours"),
        "failed": Error("the stack did not come up"), "api": APIInputError(422, "422: cpus: must be > 0"),
    }
    tree = typer.Typer(cls=OneLineErrors)

    @tree.command()
    def fail_with(what: str) -> None:
        raise raised[what]

    @tree.command()
    def other() -> None:  # two commands: `fail_with` stays a subcommand, as in `swarmsync`
        pass

    codes = {}
    for what, exc in raised.items():
        result = CliRunner().invoke(tree, ["fail-with", what])
        assert result.output.strip() == f"error: {exc}", result.output
        codes[what] = result.exit_code
    assert codes == {"missing": 2, "invalid": 2, "taken": 2, "down": 3, "refused": 4, "failed": 1, "api": 4}

    late = CliRunner().invoke(app, ["submit", "--at", "tomorrowish", "busybox", "true"])
    assert late.exit_code == 2 and "error: time 'tomorrowish' is not ISO 8601" in " ".join(late.output.split())
