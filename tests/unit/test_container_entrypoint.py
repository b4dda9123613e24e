"""The image's entrypoint (pure parts) and the compose files' contract with .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from swarmsync.deployments.container import database_url_from_parts, secrets_from_files

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose"


def test_a_secret_comes_from_its_file_and_a_set_value_wins(tmp_path: Path) -> None:
    (tmp_path / "auth").write_text("admin:s3cret\n")
    env = secrets_from_files({"SWARMSYNC_PREFECT_AUTH_STRING_FILE": str(tmp_path / "auth"),
                              "REDIS_PASSWORD_FILE": str(tmp_path / "auth"), "REDIS_PASSWORD": "given",
                              "OTHER_FILE": str(tmp_path / "auth")})
    assert env["SWARMSYNC_PREFECT_AUTH_STRING"] == "admin:s3cret"
    assert env["REDIS_PASSWORD"] == "given"
    assert "OTHER" not in env  # only SwarmSync's, Prefect's, PostgreSQL's and Redis's settings


def test_a_missing_secret_file_stops_the_container(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="SWARMSYNC_ADMIN_PASSWORD_FILE"):
        secrets_from_files({"SWARMSYNC_ADMIN_PASSWORD_FILE": str(tmp_path / "nope")})


def test_the_database_url_is_built_from_its_parts_with_the_password_quoted() -> None:
    env = database_url_from_parts({"POSTGRES_PASSWORD": "p@ss/w:rd", "POSTGRES_HOST": "db.example.org"})
    assert env["SWARMSYNC_DATABASE_URL"] == "postgresql+psycopg://swarmsync:p%40ss%2Fw%3Ard@db.example.org:5432/swarmsync"
    assert "POSTGRES_PASSWORD" not in env
    given = database_url_from_parts({"SWARMSYNC_DATABASE_URL": "sqlite:///x.db", "POSTGRES_PASSWORD": "pw"})
    assert given["SWARMSYNC_DATABASE_URL"] == "sqlite:///x.db"


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def test_every_setting_the_compose_files_read_is_in_env_example() -> None:
    example = {line.split("=", 1)[0] for line in (COMPOSE / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    used = _variables((COMPOSE / "compose.yaml").read_text()) | _variables((COMPOSE / "worker.yaml").read_text())
    assert used - example == set()


def test_every_piece_of_data_is_in_a_named_volume_and_no_secret_has_a_default() -> None:
    text = (COMPOSE / "compose.yaml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "SWARMSYNC_PREFECT_AUTH_STRING"):
        assert re.findall(r"\$\{" + secret + r"(:-|-)", text) == [], f"{secret} must have no default"
    spec = yaml.safe_load(text)
    named = set(spec["volumes"])
    assert {"postgres-data", "redis-data", "archive"} <= named
    for name, service in spec["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":", 1)[0]
            assert source in named or source.startswith("./"), f"{name}: {mount} is not a named volume"
