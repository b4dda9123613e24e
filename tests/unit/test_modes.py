"""Embedded single-user mode vs team mode: when Prefect's basic auth is required and who gets it."""

import pytest

from swarmsync.deployments.stack import StackError, check_mode, prefect_env
from swarmsync.settings import SwarmSyncSettings


def test_single_user_mode_is_refused_beyond_loopback():
    check_mode(SwarmSyncSettings(host="127.0.0.1"))
    with pytest.raises(StackError, match="SWARMSYNC_PREFECT_AUTH_STRING"):
        check_mode(SwarmSyncSettings(host="0.0.0.0"))
    check_mode(SwarmSyncSettings(host="0.0.0.0", prefect_auth_string="admin:long-secret"))


def test_team_mode_gives_the_auth_string_to_prefects_server_and_clients():
    team = prefect_env(SwarmSyncSettings(prefect_auth_string="admin:long-secret"))
    assert team["PREFECT_SERVER_API_AUTH_STRING"] == team["PREFECT_API_AUTH_STRING"] == "admin:long-secret"
    single = prefect_env(SwarmSyncSettings())
    assert "PREFECT_SERVER_API_AUTH_STRING" not in single or single.get("PREFECT_SERVER_API_AUTH_STRING") is None


def test_the_python_api_sends_the_auth_string_to_prefect(monkeypatch):
    from prefect.settings import PREFECT_API_AUTH_STRING

    from swarmsync.connection import prefect_api
    from swarmsync.settings import get_settings

    monkeypatch.setenv("SWARMSYNC_PREFECT_AUTH_STRING", "admin:long-secret")
    get_settings.cache_clear()
    try:
        with prefect_api():
            assert PREFECT_API_AUTH_STRING.value() == "admin:long-secret"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_single_user_mode_keeps_the_api_and_the_dashboard_on_loopback():
    check_mode(SwarmSyncSettings(api_host="127.0.0.2", dashboard_host="::1"))
    check_mode(SwarmSyncSettings(api_host="localhost"))
    for setting, value in (("api_host", "0.0.0.0"), ("dashboard_host", "::"), ("api_host", "10.1.2.3")):
        with pytest.raises(StackError, match=f"SWARMSYNC_{setting.upper()}={value}.*SWARMSYNC_PREFECT_AUTH_STRING"):
            check_mode(SwarmSyncSettings(**{setting: value}))
    check_mode(SwarmSyncSettings(api_host="0.0.0.0", dashboard_host="0.0.0.0", prefect_auth_string="admin:long-secret"))
