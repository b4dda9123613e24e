"""SwarmSync settings: every knob is a typed field read from `SWARMSYNC_*` env vars.

Modelled on Prefect's own settings: nothing deeper in the code reads
`os.environ` for SwarmSync options; it calls `get_settings()`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SwarmSyncSettings(BaseSettings):
    """Settings for the embedded stack, the job flow, the CLI and the Python API."""

    model_config = SettingsConfigDict(env_prefix="SWARMSYNC_", extra="ignore")

    home: Path = Field(
        default=Path("~/.swarmsync"),
        description="Folder for the embedded stack: Prefect's SQLite database, the "
        "SwarmSync database and the local archive.",
    )
    host: str = Field(default="127.0.0.1", description="Address the Prefect API/UI binds to.")
    port: int = Field(default=4200, description="Port of the Prefect API and UI.")
    api_url: str | None = Field(
        default=None,
        description="Prefect API URL to talk to; defaults to http://HOST:PORT/api.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of SwarmSync's own database (archive index). "
        "Default: SQLite under HOME. Example: postgresql+psycopg://user:pw@host/db",
    )
    redis_url: str | None = Field(default=None, description="Redis URL, e.g. redis://localhost:6379/0")
    work_pool: str = Field(default="swarmsync", description="Work pool that runs job flow runs.")
    deployment: str = Field(
        default="container-job/default", description="Deployment that submissions run."
    )
    archive_block: str | None = Field(
        default=None,
        description="Slug of a Prefect filesystem block (e.g. 'remote-file-system/archive') "
        "holding the archive. Default: a local folder HOME/archive.",
    )
    log_cap_bytes: int = Field(
        default=1_000_000,
        description="Bytes of a job's output copied into the Prefect run log; the rest "
        "is kept whole in the archive only.",
    )
    pull_policy: str = Field(
        default="if-not-present", description="Default image pull policy: always, if-not-present, never."
    )
    docker_host: str | None = Field(
        default=None, description="Docker engine URL; default: the environment (DOCKER_HOST)."
    )
    cancel_poll_seconds: float = Field(
        default=1.0, description="How often a running job checks whether it was cancelled."
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def prefect_api_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.port}/api"

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_dir / 'swarmsync.db'}"

    @property
    def archive_dir(self) -> Path:
        return self.home_dir / "archive"


@lru_cache(maxsize=1)
def get_settings() -> SwarmSyncSettings:
    """The process-wide settings, read once. Tests call `get_settings.cache_clear()`."""
    return SwarmSyncSettings()
