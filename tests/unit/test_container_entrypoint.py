"""The image's entrypoint (pure parts) and the compose files' contract with .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from swarmsync.deployments.container import SETTINGS_NAMED_FILE, database_url_from_parts, secrets_from_files

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose"


def test_a_secret_comes_from_its_file_and_a_set_value_wins(tmp_path: Path) -> None:
    (tmp_path / "auth").write_text("admin:s3cret\n")
    env = secrets_from_files({"SWARMSYNC_PREFECT_AUTH_STRING_FILE": str(tmp_path / "auth"),
                              "REDIS_PASSWORD_FILE": str(tmp_path / "auth"), "REDIS_PASSWORD": "given",
                              "OTHER_FILE": str(tmp_path / "auth")})
    assert env["SWARMSYNC_PREFECT_AUTH_STRING"] == "admin:s3cret"
    assert env["REDIS_PASSWORD"] == "given"
    assert "OTHER" not in env  # only SwarmSync's, Prefect's, PostgreSQL's and Redis's settings


def test_the_ca_file_setting_is_a_path_not_a_secret_to_load(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    env = secrets_from_files({"SWARMSYNC_CA_FILE": str(tmp_path / "ca.pem")})
    assert env == {"SWARMSYNC_CA_FILE": str(tmp_path / "ca.pem")}


def test_the_api_health_check_verifies_the_certificate_the_api_serves(tmp_path: Path) -> None:
    from swarmsync.deployments.container import api_probe_context
    from swarmsync.tls import ensure_server_cert

    assert api_probe_context({"SWARMSYNC_HOME": str(tmp_path)}) is None  # no certificate yet: plain HTTP
    cert, _key = ensure_server_cert(tmp_path / "tls", ["api", "127.0.0.1"])
    own = api_probe_context({"SWARMSYNC_HOME": str(tmp_path)})
    assert own is not None and own.check_hostname
    assert api_probe_context({"SWARMSYNC_HOME": str(tmp_path), "SWARMSYNC_TLS": "off"}) is None
    admins = api_probe_context({"SWARMSYNC_HOME": str(tmp_path / "none"), "SWARMSYNC_TLS_CERT": str(cert)})
    assert admins is not None and not admins.check_hostname  # pinned to the admin's certificate, any name


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


# --- issue 30: the team stack on day two ----------------------------------------------------------
def _compose(name: str) -> dict:
    return yaml.safe_load((COMPOSE / name).read_text())


def test_urls_without_a_password_get_it_from_the_secret_and_the_passwords_do_not_go_on() -> None:
    from swarmsync.deployments.container import passwords_into_urls

    env = database_url_from_parts(passwords_into_urls({
        "SWARMSYNC_DATABASE_URL": "postgresql+psycopg://swarmsync@postgres:5432/swarmsync",
        "PREFECT_API_DATABASE_CONNECTION_URL": "postgresql+asyncpg://swarmsync@postgres:5432/prefect",
        "SWARMSYNC_REDIS_URL": "redis://redis:6379/0", "SWARMSYNC_PREFECT_REDIS_URL": "redis://redis:6379/1",
        "POSTGRES_PASSWORD": "p@ss/w:rd", "REDIS_PASSWORD": "r3dis",
    }))
    assert env["SWARMSYNC_DATABASE_URL"] == "postgresql+psycopg://swarmsync:p%40ss%2Fw%3Ard@postgres:5432/swarmsync"
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://swarmsync:p%40ss%2Fw%3Ard@postgres:5432/prefect"
    assert env["SWARMSYNC_REDIS_URL"] == "redis://:r3dis@redis:6379/0"
    assert env["SWARMSYNC_PREFECT_REDIS_URL"] == "redis://:r3dis@redis:6379/1"
    assert "POSTGRES_PASSWORD" not in env and "REDIS_PASSWORD" not in env
    # a URL that names its password keeps it
    kept = passwords_into_urls({"SWARMSYNC_REDIS_URL": "redis://:given@r:6379/0", "REDIS_PASSWORD": "other"})
    assert kept["SWARMSYNC_REDIS_URL"] == "redis://:given@r:6379/0"


def test_a_workers_name_is_configured_or_the_docker_hosts_never_the_containers(tmp_path: Path, monkeypatch) -> None:
    from swarmsync.deployments import container

    mounts = _compose("worker.yaml")["services"]["worker"]["volumes"]
    assert f"/etc/hostname:{container.HOST_NAME_FILE}:ro" in mounts
    host_file = tmp_path / "host-hostname"
    host_file.write_text("docker-host-7\n")
    monkeypatch.setattr(container, "HOST_NAME_FILE", host_file)
    assert container.worker_name({"SWARMSYNC_WORKER_NAME": "gpu-1"}) == "gpu-1"
    assert container.worker_name({"SWARMSYNC_WORKER_NAME": ""}) == "docker-host-7"


def test_no_password_is_in_any_containers_environment_every_secret_is_a_file() -> None:
    for name in ("compose.yaml", "worker.yaml"):
        text = (COMPOSE / name).read_text()
        for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "SWARMSYNC_PREFECT_AUTH_STRING",
                       "SWARMSYNC_ADMIN_PASSWORD"):
            assert "${" + secret not in text, f"{name} reads {secret} from .env: it must be a file"
        spec = yaml.safe_load(text)
        for service, body in spec["services"].items():
            env = body.get("environment") or {}
            for key, value in env.items():
                assert "PASSWORD" not in key or key.endswith("_FILE"), (name, service, key)
                assert "AUTH_STRING" not in key or key.endswith("_FILE"), (name, service, key)
                bare = re.sub(r"\$\{[^}]*\}", "X", str(value))  # ${VARIABLE:-default} -> X
                assert not re.search(r"://[^/@]*:[^/@]*@", bare), (service, key, value)
            for key, value in env.items():
                if key.endswith("_FILE") and key not in SETTINGS_NAMED_FILE:  # (SWARMSYNC_CA_FILE: a CA, public)
                    assert value.removeprefix("/run/secrets/") in (body.get("secrets") or []), (service, key)
        assert all("file" in s for s in spec["secrets"].values())
    example = (COMPOSE / ".env.example").read_text()
    assert not re.search(r"^(POSTGRES_PASSWORD|REDIS_PASSWORD|SWARMSYNC_PREFECT_AUTH_STRING|SWARMSYNC_ADMIN_PASSWORD)=",
                         example, re.M)


def test_the_worker_is_part_of_the_stack_and_the_project_has_a_name() -> None:
    example = dict(line.split("=", 1) for line in (COMPOSE / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert example["COMPOSE_FILE"].split(":") == ["compose.yaml", "worker.yaml"]
    assert example["COMPOSE_PROJECT_NAME"] == "swarmsync"


def test_the_dashboards_options_are_on_a_volume() -> None:
    dashboard = _compose("compose.yaml")["services"]["dashboard"]
    home = dashboard["environment"]["SWARMSYNC_HOME"]
    assert any(m.endswith(":" + home) and m.split(":")[0] in _compose("compose.yaml")["volumes"]
               for m in dashboard["volumes"])


def test_the_stacks_own_network_is_fixed_and_trusted_from_the_first_up() -> None:
    spec = _compose("compose.yaml")
    subnet = spec["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert subnet.startswith("${SWARMSYNC_SUBNET:-")
    assert subnet in spec["services"]["api"]["environment"]["SWARMSYNC_TRUSTED_PROXIES"]


def test_the_balancer_fails_over_fast_and_replays_only_what_is_safe() -> None:
    cfg = (COMPOSE / "haproxy.cfg").read_text()
    assert re.search(r"^\s*option redispatch", cfg, re.M) and re.search(r"^\s*retries [1-9]", cfg, re.M)
    assert re.search(r"^\s*retry-on .*conn-failure", cfg, re.M)
    assert re.search(r"http-request disable-l7-retry if !replayable", cfg)
    checks = re.search(r"default-server (.*)", cfg).group(1)
    assert int(re.search(r"inter (\d+)s", checks).group(1)) <= 1 and "fall 2" in checks


def test_links_use_the_public_addresses_never_a_bind_address_or_a_service_name(monkeypatch) -> None:
    from swarmsync.client import dashboard_settings
    from swarmsync.settings import get_settings

    for key, value in {"SWARMSYNC_HOST": "0.0.0.0", "SWARMSYNC_DASHBOARD_API_URL": "http://api:4280",
                       "SWARMSYNC_API_URL": "http://prefect:4200/api"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        plain = dashboard_settings()
        assert "0.0.0.0" not in plain.dashboard_url
        monkeypatch.setenv("SWARMSYNC_PUBLIC_URL", "https://swarmsync.example.org/")
        monkeypatch.setenv("SWARMSYNC_DASHBOARD_PUBLIC_URL", "https://dashboard.example.org")
        monkeypatch.setenv("SWARMSYNC_PREFECT_UI_URL", "https://prefect.example.org")
        get_settings.cache_clear()
        public = dashboard_settings()
        assert public.api_url == "http://api:4280"  # what it talks to, inside the stack
        assert public.public_api_url == "https://swarmsync.example.org"
        assert public.dashboard_url == "https://dashboard.example.org"
        assert public.prefect_ui_url == "https://prefect.example.org"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
