"""Every Prefect internal SwarmSync relies on (swarmsync/prefect_internals.py) is still there,
in the shape SwarmSync expects: an upgrade of Prefect that moves one fails here first, by name."""

from __future__ import annotations

import inspect

import pytest

from swarmsync import prefect_internals
from swarmsync.prefect_internals import PrefectInternalsChanged, internal
from swarmsync.spec import JobSpec  # a flow's parameter type below, resolved from this module's names


def test_a_missing_internal_is_named_not_skipped():
    with pytest.raises(PrefectInternalsChanged, match=r"prefect\.flow_engine\.no_such_symbol"):
        internal("prefect.flow_engine", "no_such_symbol")
    with pytest.raises(PrefectInternalsChanged, match="no_such_module"):
        internal("prefect.no_such_module", "x")


def test_the_suspension_watch_the_worker_skips_is_a_context_manager_of_the_flow_engine():
    watch = internal("prefect.flow_engine", "observe_flow_run_suspension")
    source = inspect.getsource(internal("prefect.flow_engine", "BaseFlowRunEngine"))
    assert "observe_flow_run_suspension(" in source  # the engine still enters it per deployment run
    assert callable(watch)


def test_skipping_the_suspension_watch_replaces_it():
    import prefect.flow_engine

    original = prefect.flow_engine.observe_flow_run_suspension
    try:
        prefect_internals.skip_suspension_watch()
        assert prefect.flow_engine.observe_flow_run_suspension is prefect_internals._no_suspension_watch
    finally:
        prefect.flow_engine.observe_flow_run_suspension = original


class _Beating:
    """What the heartbeat context uses of a flow run engine (a pure-logic stand-in, fast interval)."""

    def __init__(self, seconds: float):
        import logging

        self.heartbeat_seconds, self.flow_run, self.sent = seconds, None, []
        self.logger = logging.getLogger("test")

    def _build_heartbeat_event_template(self):
        return {"prefect.resource.id": "run"}, []

    def _emit_flow_run_heartbeat(self, resource, related):
        self.sent.append(resource)


def test_heartbeats_are_timers_on_the_loop_starting_one_interval_after_the_start(monkeypatch):
    import anyio
    import prefect.flow_engine

    source = inspect.getsource(internal("prefect.flow_engine", "AsyncFlowRunEngine"))
    assert "_send_heartbeats(self" in source  # the async engine still enters it per run
    monkeypatch.setattr(prefect.flow_engine, "_send_heartbeats", prefect.flow_engine._send_heartbeats)
    prefect_internals.heartbeats_on_the_event_loop()
    prefect_internals.heartbeats_on_the_event_loop()  # applied once
    send = prefect.flow_engine._send_heartbeats
    assert send.on_the_loop and not getattr(send.threaded, "on_the_loop", False)

    async def run(seconds: float, lasting: float) -> list:
        engine = _Beating(seconds)
        with send(engine, join_on_exit=False):
            await anyio.sleep(lasting)
        await anyio.sleep(seconds * 2)  # none after the run's end
        return engine.sent

    assert anyio.run(run, 0.5, 0.1) == []  # a run shorter than the interval sends none
    assert len(anyio.run(run, 0.1, 1.0)) >= 2  # then one per interval, from one interval on


def test_the_default_result_storage_lookup_exists_and_is_cached_once_wrapped():
    import prefect.results

    read = internal("prefect.results", "_read_server_default_result_storage_block_id")
    assert callable(read)
    assert "_read_server_default_result_storage_block_id" in inspect.getsource(prefect.results)
    original = prefect.results._read_server_default_result_storage_block_id
    try:
        prefect_internals.cache_default_result_storage(ttl=1.0)
        assert hasattr(prefect.results._read_server_default_result_storage_block_id, "cache")
    finally:
        prefect.results._read_server_default_result_storage_block_id = original


def test_the_cancelling_observer_has_the_calls_the_worker_makes():
    observer = prefect_internals.flow_run_cancelling_observer()
    for method in ("add_in_flight_flow_run_id", "remove_in_flight_flow_run_id", "__aenter__", "__aexit__"):
        assert hasattr(observer, method), method
    params = inspect.signature(observer).parameters
    assert "on_cancelling" in params and "polling_interval" in params


def test_prefects_cron_rules_refuse_what_the_server_refuses():
    validate_cron_string, croniter = prefect_internals.cron_checkers()
    assert validate_cron_string("30 2 * * *") == "30 2 * * *"
    with pytest.raises(ValueError):
        validate_cron_string("61 * * * *")
    assert croniter("30 2 * * *")


def test_blocks_are_built_from_documents_already_read():
    from prefect.blocks.system import Secret

    assert "block_document" in inspect.signature(Secret._from_block_document).parameters


def test_the_base_worker_hooks_swarmsync_overrides_keep_their_parameters():
    prefect_internals.check_base_worker_hooks()
    from swarmsync.worker import SwarmSyncWorker

    for name in prefect_internals.BASE_WORKER_HOOKS:
        assert hasattr(SwarmSyncWorker, name)


def test_the_server_patches_find_what_they_patch():
    validator = internal("prefect.utilities.schema_tools.validation", "_VALIDATOR")
    assert callable(validator.check_schema)
    config = internal("prefect.server.database.configurations", "AioSqliteConfiguration")
    assert "with_for_update" in inspect.signature(config.begin_transaction).parameters


def test_the_private_worker_attributes_and_client_context_swarmsync_reads_are_there():
    from swarmsync.worker import SwarmSyncWorker

    prefect_internals.check_base_worker_attributes(SwarmSyncWorker(work_pool_name="internals-check"))
    with pytest.raises(prefect_internals.PrefectInternalsChanged, match="_work_pool"):
        prefect_internals.check_base_worker_attributes(object())
    from prefect.client.orchestration import PrefectClient

    for read in ("read_deployment", "read_flow"):  # the worker caches these (swarmsync.worker._cache_reads)
        assert "deployment_id" in inspect.signature(getattr(PrefectClient, read)).parameters or \
            "flow_id" in inspect.signature(getattr(PrefectClient, read)).parameters


def _tls_context(client):
    """The TLS context a Prefect client's HTTP connection pool would use."""
    return client._client._transport._pool._ssl_context


def test_prefect_clients_share_one_verified_tls_context_and_never_an_insecure_one(monkeypatch):
    import ssl

    import prefect.client.orchestration as orchestration
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.settings import PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings

    monkeypatch.setattr(orchestration, "ssl", ssl)  # Prefect's own: the real module
    assert _tls_context(SyncPrefectClient("http://127.0.0.1:9/api")) is not _tls_context(
        SyncPrefectClient("http://127.0.0.1:9/api"))  # without the patch: a new context per client
    prefect_internals.share_tls_contexts()
    prefect_internals.share_tls_contexts()  # idempotent
    first = SyncPrefectClient("http://127.0.0.1:9/api")
    second = SyncPrefectClient("http://127.0.0.1:9/api")
    async_one = PrefectClient("http://127.0.0.1:9/api")
    assert _tls_context(first) is _tls_context(second) is _tls_context(async_one)
    assert _tls_context(first).verify_mode == ssl.CERT_REQUIRED
    with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        insecure = SyncPrefectClient("http://127.0.0.1:9/api")
    assert _tls_context(insecure) is not _tls_context(first)
    assert _tls_context(insecure).verify_mode == ssl.CERT_NONE
    assert _tls_context(first).verify_mode == ssl.CERT_REQUIRED and _tls_context(first).check_hostname


def test_a_flows_parameter_model_is_built_once_and_every_runs_parameters_still_validated(monkeypatch):
    import prefect.flows
    from cachetools import LRUCache
    from prefect import flow
    from prefect.exceptions import ParameterTypeError

    prefects = getattr(prefect.flows.ValidatedFunction, "unremembered", prefect.flows.ValidatedFunction)
    built: list[object] = []

    class Counted(prefects):  # Prefect's own class, counting the models it builds
        def __init__(self, *args, **kwargs):
            built.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(prefect.flows, "ValidatedFunction", Counted)
    monkeypatch.setattr(prefect_internals, "_PARAMETER_MODELS", LRUCache(maxsize=8))

    @flow
    def job_flow(job: JobSpec, attempt: int = 1) -> None:
        """A flow with a job's parameters."""

    given = {"job": {"image": "busybox", "command": ["echo", "hi"]}, "attempt": "2"}
    before = len(built)
    job_flow.validate_parameters(given)
    job_flow.validate_parameters(given)
    assert len(built) == before + 2  # Prefect alone: a new model at every run
    prefect_internals.remember_parameter_models()
    prefect_internals.remember_parameter_models()  # idempotent
    for _ in range(3):
        checked = job_flow.validate_parameters(given)
        assert isinstance(checked["job"], JobSpec) and checked["job"].image == "busybox" and checked["attempt"] == 2
    assert len(built) == before + 3  # built once more, then remembered
    with pytest.raises(ParameterTypeError):
        job_flow.validate_parameters({"job": {"image": "busybox"}, "attempt": "not a number"})


def test_the_related_resources_of_a_set_of_tags_are_validated_once_and_never_shared(monkeypatch):
    """Every event of a run carries a resource per tag; once `remember_tag_resources` runs, each set of tags goes
    through Prefect's own function once, and every caller still gets resources of its own with the same labels."""
    import importlib

    import prefect.events.related as related
    from cachetools import LRUCache

    prefects = getattr(related.tags_as_related_resources, "unremembered", related.tags_as_related_resources)
    calls: list[frozenset] = []

    def counted(tags):
        calls.append(frozenset(tags))
        return prefects(tags)

    for module in prefect_internals.TAG_RESOURCE_USERS:
        monkeypatch.setattr(importlib.import_module(module), "tags_as_related_resources", counted)
    monkeypatch.setattr(prefect_internals, "_TAG_RESOURCES", LRUCache(maxsize=8))
    tags = {"swarmsync.project:data", "swarmsync.user:ada", "nightly"}
    expected = [dict(r.root) for r in prefects(tags)]
    prefect_internals.remember_tag_resources()
    prefect_internals.remember_tag_resources()  # idempotent
    for module in prefect_internals.TAG_RESOURCE_USERS:
        assert importlib.import_module(module).tags_as_related_resources is related.tags_as_related_resources
    first, second = related.tags_as_related_resources(tags), related.tags_as_related_resources(list(tags))
    assert [dict(r.root) for r in first] == [dict(r.root) for r in second] == expected
    assert [r.id for r in first] == ["prefect.tag.nightly", "prefect.tag.swarmsync.project:data",
                                     "prefect.tag.swarmsync.user:ada"] and first[0].role == "tag"
    assert all(isinstance(r, related.RelatedResource) for r in first)
    assert calls == [frozenset(tags)]  # validated once for the set
    first[0]["prefect.resource.role"] = "changed"  # one event's resource changed: not the next event's
    assert related.tags_as_related_resources(tags)[0].role == "tag"
    related.tags_as_related_resources({"other"})
    assert calls == [frozenset(tags), frozenset({"other"})]
