"""The client's settings without pydantic-settings (`swarmsync.client_settings`) read the environment exactly as
`SwarmSyncSettings` does for the same five fields: the CLI's API commands start without pydantic-settings, and
must not behave differently for it (docs/benchmarks.md, CLI start). A client of an http:// URL gets a TLS
context that trusts nothing (never used: no redirects followed), not httpx's default, which loads certifi."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from swarmsync import client_settings
from swarmsync.client import _unused_tls_context
from swarmsync.settings import SwarmSyncSettings

CASES = [
    {},
    {"SWARMSYNC_URL": "http://api:4280", "SWARMSYNC_TOKEN": "ssk_abc", "SWARMSYNC_PROJECT": "data",
     "SWARMSYNC_CA_FILE": "/etc/ca.pem", "SWARMSYNC_CONFIG_DIR": "/tmp/cfg"},
    {"swarmsync_url": "http://lower:1", "Swarmsync_Token": "mixed", "swarmsync_config_dir": "~/x"},  # any case
    {"SWARMSYNC_URL": "", "SWARMSYNC_TOKEN": "", "SWARMSYNC_PROJECT": "", "SWARMSYNC_CA_FILE": "",
     "SWARMSYNC_CONFIG_DIR": ""},  # empty values, as they are given
    {"SWARMSYNC_URL": " http://spaces:1 ", "SWARMSYNC_HOME": "/elsewhere", "OTHER_URL": "http://not-ours"},
]


def expected(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> client_settings.ClientSettings:
    """What `SwarmSyncSettings()` holds for the five fields in `environ` (and nothing else set)."""
    for key in [k for k in __import__("os").environ if k.lower().startswith("swarmsync_")]:
        monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    settings = SwarmSyncSettings()
    return client_settings.ClientSettings(
        url=settings.url, token=settings.token.get_secret_value() if settings.token else None,
        project=settings.project, ca_file=settings.ca_file, config_dir=settings.config_dir)


@pytest.mark.parametrize("environ", CASES, ids=["unset", "all", "any-case", "empty", "others"])
def test_the_environment_is_read_as_swarmsync_settings_reads_it(environ, monkeypatch):
    assert client_settings.from_environment(environ) == expected(environ, monkeypatch)


def test_the_fields_and_defaults_are_those_of_swarmsync_settings():
    """A field renamed or a default changed in `SwarmSyncSettings` must be changed in `client_settings` too."""
    model = SwarmSyncSettings.model_fields
    assert set(client_settings.FIELDS) <= set(model)
    assert model["config_dir"].default == client_settings.DEFAULT_CONFIG_DIR
    assert all(model[name].default is None for name in ("url", "token", "project", "ca_file"))


def test_a_process_with_the_settings_loaded_uses_them(monkeypatch):
    """The API server, the dashboard and the tests have `get_settings()` (and may have changed it): theirs win."""
    from swarmsync.settings import get_settings

    monkeypatch.setattr(get_settings(), "project", "from-settings")
    monkeypatch.setenv("SWARMSYNC_PROJECT", "from-env")
    assert client_settings.client_settings().project == "from-settings"


def test_the_token_is_not_shown():
    shown = repr(client_settings.ClientSettings(url="http://a", token="ssk_secret", config_dir=Path("/c")))
    assert "ssk_secret" not in shown and "***" in shown


def test_a_client_of_an_http_url_trusts_no_certificate():
    """Unused for http://, and it could only refuse: it verifies names and certificates and trusts no CA."""
    context = _unused_tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0
