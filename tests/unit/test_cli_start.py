"""The command line starts without Prefect: `swarmsync --help` (and each command group's help) imports neither
Prefect nor the database layer, and `import swarmsync` keeps its public names while loading them on first use
(the job commands that read a SwarmSync API: tests/accounts/test_cli_accounts.py; the probe: tests/probes.py).
Timings are in bench/cli.py; this checks what is imported, which is what makes the time."""

from __future__ import annotations

import pytest

from tests.probes import HEAVY, NOT_FOR_HELP, loaded_after, run_probe

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
    """Nor httpx (a request loads it), anyio, YAML, compose files or pipeline files: `--help` sends nothing."""
    loaded = loaded_after(HELP.format(words=words), HEAVY + NOT_FOR_HELP)
    assert not any(loaded.values()), f"imported: {[m for m, yes in loaded.items() if yes]}"


def test_help_builds_the_catalogue_options_only_for_the_commands_that_have_them():
    """The JobSpec catalogue's options (`submit`, `schedule create`, `template save`, `pool create`) are made when
    that command's help or words are read (`OptionsOnFirstUse`): `swarmsync --help` and the commands that read the
    API load neither the models nor the settings for their help (nor pydantic for the top level's: Typer itself
    imports it to convert a command's parameters); `submit --help` reads them from the option table
    (swarmsync/cli/option_table.py), without the models or pydantic either."""
    models = ("pydantic_settings", "swarmsync.spec", "swarmsync.catalogue", "swarmsync.policy", "swarmsync.settings")
    assert not any(loaded_after(HELP.format(words=[["--help"]]), ("pydantic", *models)).values())
    light = [["jobs", "--help"], ["status", "--help"], ["logs", "--help"], ["whoami", "--help"],
             ["template", "list", "--help"], ["schedule", "list", "--help"], ["schedule", "--help"]]
    loaded = loaded_after(HELP.format(words=light), models)
    assert not any(loaded.values()), f"imported: {[m for m, yes in loaded.items() if yes]}"
    printed, loaded = run_probe(HELP.format(words=[["submit", "--help"]]), modules=("pydantic", *models))
    assert "--cpu" in printed and "--allow-exit" in printed
    assert not any(loaded.values()), f"imported: {[m for m, yes in loaded.items() if yes]}"


def test_the_api_client_imports_no_prefect():
    """`swarmsync.Client` (what API-only commands use) imports without Prefect, and without httpx, pydantic or
    the JobSpec models until a client is made or a call needs them; the names it always had still resolve."""
    modules = ("prefect", "sqlalchemy", "httpx", "pydantic", "pydantic_settings", "swarmsync.spec",
               "swarmsync.catalogue", "swarmsync.compose")
    loaded = loaded_after("import swarmsync\nfrom swarmsync.client import Client, APIError, remote_configured",
                          modules)
    assert not any(loaded.values()), loaded
    code = """
from swarmsync import catalogue, compose, job_rows, policy, routing, settings, spec
import httpx
from swarmsync.client import (HostPolicy, JobPage, JobSpec, JobSummary, RemoteJobResult, get_settings,
                              load_compose, queue_for)
from swarmsync.client import catalogue as same_catalogue, httpx as same_httpx
assert same_catalogue is catalogue and same_httpx is httpx and JobSpec is spec.JobSpec
assert load_compose is compose.load_compose and HostPolicy is policy.HostPolicy and queue_for is routing.queue_for
assert JobPage is job_rows.JobPage and JobSummary is job_rows.JobSummary and get_settings is settings.get_settings
assert RemoteJobResult is job_rows.RemoteJobResult
from swarmsync.client import Client
assert Client("http://127.0.0.1:9").http.base_url == "http://127.0.0.1:9"
from swarmsync.deployments.schedules import RecurringJob, ScheduleEntry
from swarmsync import schedule_rows
assert RecurringJob is schedule_rows.RecurringJob and ScheduleEntry is schedule_rows.ScheduleEntry
"""
    assert loaded_after(code, ("httpx", "prefect")) == {"httpx": True, "prefect": True}  # every assertion held


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


def test_a_client_loads_httpx_without_its_command_line_and_http2_until_asked():
    """`Client(...)` imports httpx and httpcore without `httpx._main` (the `httpx` command: Click, Pygments) and
    without `h2` (docs/benchmarks.md, CLI start); both import as usual afterwards, and an HTTP/2 client is still
    made and uses httpcore's real HTTP/2 connection."""
    code = """
import sys
from swarmsync.client import Client
Client("http://127.0.0.1:9", "token")
print(sorted(m for m in ("httpx._main", "h2", "pygments", "httpcore._sync.http2") if m in sys.modules))
import h2, httpx, httpx._main  # importable again
from httpcore._sync.http2 import HTTP2Connection
assert callable(httpx._main.main) and HTTP2Connection.__module__ == "httpcore._sync.http2"
httpx.Client(http2=True).close()
"""
    printed, loaded = run_probe(code, modules=("httpx", "httpcore", "h2"))
    assert printed.strip() == "[]" and all(loaded.values()), (printed, loaded)


def _command_paths(command, prefix=()):
    """Every command and group of a Click tree, as the words that reach it."""
    if prefix:
        yield prefix
    if hasattr(command, "commands"):  # a group (of Typer's own Click)
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*prefix, name))


def test_each_command_runs_from_an_app_of_its_own_module_as_from_the_whole_tree():
    """`main()` builds only the module of the first word (`app_for`): every first word of the whole tree maps to
    the module that holds it, and each command's and group's `--help`, and a wrong option's error, read the same
    from that app as from the whole one."""
    import importlib

    from typer.main import get_command
    from typer.testing import CliRunner

    from swarmsync.cli import main

    derived = {}
    for module, group in main.MODULES:
        sub = importlib.import_module(f"swarmsync.cli.{module}").app
        names = [group] if group else [c.name or c.callback.__name__.replace("_", "-") for c in sub.registered_commands]
        derived.update(dict.fromkeys(names, module))
    assert main.FIRST_WORDS == derived
    whole = get_command(main.app)
    assert set(whole.commands) == set(main.FIRST_WORDS)
    runner = CliRunner()
    paths = list(_command_paths(whole))
    assert len(paths) > 60
    for words in paths:
        for tail in (["--help"], ["--no-such-option"]):
            own = runner.invoke(main.app_for(list(words)), [*words, *tail], prog_name="swarmsync",
                                env={"COLUMNS": "200"})
            full = runner.invoke(main.app, [*words, *tail], prog_name="swarmsync", env={"COLUMNS": "200"})
            assert (own.exit_code, own.output) == (full.exit_code, full.output), words
    assert main.app_for([]) is not main.app_for(["nonsense"])  # both the whole tree, made for the call
    assert set(get_command(main.app_for(["--help"])).commands) == set(main.FIRST_WORDS)
