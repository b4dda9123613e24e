"""The command line starts without Prefect: `swarmsync --help` (and each command group's help) imports neither
Prefect nor the database layer, and `import swarmsync` keeps its public names while loading them on first use
(the job commands that read a SwarmSync API: tests/accounts/test_cli_accounts.py; the probe: tests/probes.py).
Timings are in bench/cli.py; this checks what is imported, which is what makes the time."""

from __future__ import annotations

import pytest

from tests.probes import loaded_after

HELP = """
from typer.main import get_command
from swarmsync.cli.main import app
command = get_command(app)
for words in {words!r}:
    try:
        command.main(words, prog_name="swarmsync", standalone_mode=False)
    except SystemExit:
        pass
"""


@pytest.mark.parametrize("words", [
    [["--help"]],
    [["jobs", "--help"], ["status", "--help"], ["result", "--help"], ["submit", "--help"], ["whoami", "--help"]],
    [["template", "list", "--help"], ["schedule", "list", "--help"], ["token", "list", "--help"],
     ["pipeline", "list", "--help"], ["user", "list", "--help"], ["project", "list", "--help"],
     ["worker", "start", "--help"], ["pool", "--help"], ["key", "--help"], ["tls", "--help"], ["up", "--help"]],
], ids=["top", "job-commands", "groups"])
def test_the_help_of_the_cli_imports_no_prefect(words):
    loaded = loaded_after(HELP.format(words=words))
    assert not any(loaded.values()), f"imported: {[m for m, yes in loaded.items() if yes]}"


def test_the_api_client_imports_no_prefect():
    """`swarmsync.Client` (what API-only commands use) imports without Prefect."""
    loaded = loaded_after("import swarmsync\nfrom swarmsync.client import Client, APIError, remote_configured")
    assert not loaded["prefect"] and not loaded["sqlalchemy"], loaded


def test_the_public_names_load_on_first_use():
    """`import swarmsync` alone loads no Prefect; each public name then resolves to the object it always was."""
    assert not loaded_after("import swarmsync")["prefect"]
    code = """
import swarmsync
from swarmsync import jobs, spec, client, pipelines, templates, compose, pipeline_spec
from swarmsync.deployments import schedules
assert swarmsync.submit is jobs.submit and swarmsync.get_job is jobs.get_job
assert swarmsync.JobNotFound is jobs.JobNotFound and swarmsync.JobSpec is spec.JobSpec
assert swarmsync.Client is client.Client and swarmsync.schedules is schedules
assert swarmsync.templates is templates and swarmsync.pipelines is pipelines
assert swarmsync.load_compose is compose.load_compose and swarmsync.PipelineError is pipeline_spec.PipelineError
assert all(hasattr(swarmsync, name) for name in swarmsync.__all__)
assert set(swarmsync.__all__) <= set(dir(swarmsync))
from swarmsync.client import RemoteJob, JobRow, ArchiveCorrupt
from swarmsync.remote_jobs import RemoteJob as Same
assert RemoteJob is Same and JobRow is jobs.JobRow
try:
    swarmsync.no_such_name
except AttributeError:
    pass
else:
    raise AssertionError("an unknown name was answered")
"""
    assert loaded_after(code)["prefect"]  # the names did load (and every assertion above held)
