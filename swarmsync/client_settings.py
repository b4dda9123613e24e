"""The five settings an API client reads, without pydantic-settings: `SWARMSYNC_URL`, `SWARMSYNC_TOKEN`,
`SWARMSYNC_PROJECT`, `SWARMSYNC_CA_FILE` and `SWARMSYNC_CONFIG_DIR`.

A CLI command that only talks to a SwarmSync API reads these and nothing else; importing pydantic-settings and
building `SwarmSyncSettings` (its ~60 fields) cost ~40 ms of a start that should take 0.3 s in all
(docs/benchmarks.md, CLI start). So:

- in a process that has already loaded `swarmsync.settings` (the API server, the dashboard, workers, the tests),
  the values come from `get_settings()`, as they always did, overrides and all;
- otherwise (the CLI) they are read from the environment exactly as `SwarmSyncSettings` reads them: the same
  names, case-insensitive, and the same defaults. `tests/unit/test_client_settings.py` holds the two readers to
  the same answers.

The fields and defaults are `SwarmSyncSettings`'s; change them there and here together (the test says so)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PREFIX = "SWARMSYNC_"
FIELDS = ("url", "token", "project", "ca_file", "config_dir")
DEFAULT_CONFIG_DIR = Path("~/.config/swarmsync")


@dataclass(frozen=True)
class ClientSettings:
    url: str | None = None  # a SwarmSync API (else the stored login's)
    token: str | None = None  # its token (else the stored login's); never printed
    project: str | None = None  # the project commands work in when they name none
    ca_file: Path | None = None  # the only CA to trust for an https URL
    config_dir: Path = DEFAULT_CONFIG_DIR  # where `swarmsync login` keeps credentials.json

    def __repr__(self) -> str:
        return (f"ClientSettings(url={self.url!r}, token={'***' if self.token else None}, project={self.project!r}, "
                f"ca_file={self.ca_file!r}, config_dir={self.config_dir!r})")


def client_settings() -> ClientSettings:
    """The client's settings: `get_settings()`'s when `swarmsync.settings` is loaded, else the environment's."""
    loaded = sys.modules.get("swarmsync.settings")
    if loaded is not None:
        settings = loaded.get_settings()
        return ClientSettings(url=settings.url, token=settings.token.get_secret_value() if settings.token else None,
                              project=settings.project, ca_file=settings.ca_file, config_dir=settings.config_dir)
    return from_environment(os.environ)


def from_environment(environ: os._Environ[str] | dict[str, str]) -> ClientSettings:
    """What `SwarmSyncSettings()` would hold for these fields given `environ` (pydantic-settings' rules: names
    without regard to case; a value is taken as it is, an empty SWARMSYNC_TOKEN meaning none)."""
    names = {f"{PREFIX}{field}".lower(): field for field in FIELDS}
    found = {names[key.lower()]: value for key, value in environ.items() if key.lower() in names}
    ca_file = found.get("ca_file")
    return ClientSettings(url=found.get("url"), token=found.get("token") or None, project=found.get("project"),
                          ca_file=None if ca_file is None else Path(ca_file),
                          config_dir=Path(found["config_dir"]) if "config_dir" in found else DEFAULT_CONFIG_DIR)
