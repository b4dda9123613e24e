"""What a fresh interpreter imports: the command line must start without Prefect (tests/unit/test_cli_start.py,
and the job commands through the API in tests/accounts/test_cli_accounts.py)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("prefect", "sqlalchemy", "docker", "fastapi", "streamlit")
# what `swarmsync --help` does without too: the HTTP client (loaded once a command sends a request), the JobSpec
# models' helpers the dashboard reads through swarmsync.client, pipeline files (docs/benchmarks.md, CLI start)
NOT_FOR_HELP = ("httpx", "anyio", "yaml", "swarmsync.compose", "swarmsync.pipeline_spec", "swarmsync.connection")
# what the commands that only read the API (and `submit`) do without: the settings model (swarmsync.client_settings
# reads the client's five), pydantic (their rows are dataclasses; Typer before 0.29 parses options without it;
# submit's options come from swarmsync/cli/option_table.json and the server validates them), and the parts of
# httpx a client never uses (the `httpx` command, HTTP/2: swarmsync.client.import_httpx)
NOT_FOR_READING = ("pydantic", "pydantic_settings", "swarmsync.settings", "httpx._main", "h2")

# `swarmsync WORDS` as the console script runs it, in the probe's own interpreter
COMMAND = """
import runpy, sys
sys.argv = ["swarmsync", *{words!r}]
try:
    runpy.run_module("swarmsync.cli.main", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, f"exit {{exc.code}}"
"""


def run_probe(code: str, env: dict[str, str] | None = None,
              modules: tuple[str, ...] = HEAVY) -> tuple[str, dict[str, bool]]:
    """What a fresh interpreter printed running `code` (with `env`), and which of `modules` it had imported by
    then."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    *printed, loaded = done.stdout.strip().splitlines()
    return "\n".join(printed), json.loads(loaded)


def loaded_after(code: str, modules: tuple[str, ...] = HEAVY) -> dict[str, bool]:
    """Which of `modules` a fresh interpreter has imported after running `code`."""
    return run_probe(code, modules=modules)[1]
