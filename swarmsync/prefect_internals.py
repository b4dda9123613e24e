"""Every use of Prefect's internals by SwarmSync, in one place.

SwarmSync relies on a few things Prefect does not promise to keep: private functions it
patches for speed, private modules it imports, private hooks of `BaseWorker` its worker
overrides. Each is reached through `internal()` here, which raises
`PrefectInternalsChanged` (naming the symbol and the Prefect version) instead of silently
doing nothing when an upgrade renames it; `tests/unit/test_prefect_internals.py` checks
every one against the installed Prefect, so an upgrade that moves one fails there first.

What is patched and why (each measured; see docs/internals.md):
- the server remembers job-variable schemas that passed the metaschema check (~90 ms CPU
  per run creation) and the pool template's checked defaults (~12 ms), begins SQLite
  transactions IMMEDIATE (writers queue, no 503s), and its cancellation cleanup visits only
  the cancelled runs that still have open task runs (not every run cancelled in the last day,
  every 20 s);
- in every process that talks to Prefect through `swarmsync.connection.prefect_api` (API, dashboard,
  worker, CLI), Prefect's clients share one verified TLS context per CA bundle instead of building
  one per client (~20-35 ms of CPU each: every API request made at least one client);
- in the worker's process, the engine's per-run suspension watch is skipped (job flows
  never suspend), the server's default result storage is asked at most hourly, and a
  run's heartbeats are timer callbacks on the worker's event loop (the first one interval
  after its start) instead of a thread per run that beats at once, and the pydantic model
  Prefect builds from a flow's signature to validate a run's parameters is built once per
  flow function, not once per run (~6 ms of CPU per job), and the related resources of a set of tags,
  which every event carries, are validated once per set (~4% of the worker's CPU per job).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import inspect
import json
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import prefect
from cachetools import LRUCache, TTLCache, cached

from swarmsync.errors import Error


class PrefectInternalsChanged(Error, RuntimeError):
    """A Prefect internal SwarmSync relies on is gone or changed shape (an upgrade)."""


def internal(module: str, name: str) -> Any:
    """`module.name` from Prefect, or PrefectInternalsChanged saying which and where."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PrefectInternalsChanged(
            f"{module}.{name} is not in Prefect {prefect.__version__}: SwarmSync relies on it "
            "(swarmsync/prefect_internals.py); pin the Prefect version SwarmSync supports or update that module"
        ) from exc


# --- private symbols SwarmSync imports ----------------------------------------------------------
def flow_run_cancelling_observer() -> type:
    """Prefect's watcher of Cancelling flow runs (websocket events, polling fallback), as its
    own workers use it: one for all of a SwarmSync worker's running jobs."""
    return internal("prefect._internal.observers", "FlowRunCancellingObserver")


def cron_checkers() -> tuple[Any, Any]:
    """Prefect's cron validator and its vendored croniter: the same rules (and messages) the
    server applies to a Cron schedule."""
    return (internal("prefect._internal.schemas.validators", "validate_cron_string"),
            internal("prefect._vendor.croniter", "croniter"))


def block_from_document(block_cls: type, document: Any) -> Any:
    """A Block instance from a block document already read (Prefect's own loader does this per
    name; listing all of a type's documents and building each saves a request per block)."""
    from_document = getattr(block_cls, "_from_block_document", None)
    if from_document is None:
        raise PrefectInternalsChanged(f"Block._from_block_document is not in Prefect {prefect.__version__}")
    return from_document(document)


# private hooks of prefect.workers.base.BaseWorker that SwarmSyncWorker overrides or reads,
# with the parameters it expects (tests/unit/test_prefect_internals.py checks each)
BASE_WORKER_HOOKS: dict[str, tuple[str, ...]] = {
    "_propose_pending_state": ("self", "flow_run"),
    "_propose_submitting_state": ("self", "flow_run"),
    "_give_worker_labels_to_flow_run": ("self", "flow_run_id"),
    "_mark_flow_run_as_cancelled": ("self", "flow_run", "state_updates"),
    "_worker_metadata": ("self",),
    "get_and_submit_flow_runs": ("self",),
    "_get_scheduled_flow_runs": ("self",),
}

# private attributes of a BaseWorker instance that SwarmSyncWorker reads (set in BaseWorker.__init__)
BASE_WORKER_ATTRIBUTES = ("_work_pool", "_work_pool_name", "_limiter", "_logger", "_runs_task_group",
                          "_submitting_flow_run_ids")


def check_base_worker_attributes(worker: Any) -> None:
    """PrefectInternalsChanged if a fresh worker lacks a private attribute SwarmSync reads, or
    Prefect's client context no longer keeps its ContextVar in `__var__` (the worker sets it
    so that flows in its process share its client)."""
    for name in BASE_WORKER_ATTRIBUTES:
        if not hasattr(worker, name):
            raise PrefectInternalsChanged(f"BaseWorker().{name} is not in Prefect {prefect.__version__}")
    context = internal("prefect.context", "AsyncClientContext")
    if not hasattr(getattr(context, "__var__", None), "set"):
        raise PrefectInternalsChanged(
            f"AsyncClientContext.__var__ is not a ContextVar in Prefect {prefect.__version__}")


def enter_client_context(context: Any) -> None:
    """Make `context` (an entered AsyncClientContext) current in this task and the tasks it starts,
    as Prefect's own `__enter__` does, without a `with` block around the worker's whole life."""
    internal("prefect.context", "AsyncClientContext").__var__.set(context)


_PARAMETER_MODELS: LRUCache[tuple[Any, str], Any] = LRUCache(maxsize=32)
_PARAMETER_MODELS_LOCK = threading.Lock()
_TAG_RESOURCES: LRUCache[frozenset[str], list[dict[str, str]]] = LRUCache(maxsize=1024)  # labels per set of tags
_TAG_RESOURCES_LOCK = threading.Lock()


def remember_parameter_models() -> None:
    """Make Prefect's flows build the parameter model of a flow function once, not at every run.

    `Flow.validate_parameters` makes a new `ValidatedFunction(flow.fn, config)` for every run: a pydantic
    model class created from the function's signature (~6 ms of the worker's CPU per job, 7-8% of it,
    py-spy), then validates the run's parameters with it. The model depends on the function and config
    alone and validating with it keeps no state (but a one-time rebuild of forward references), so one
    is kept per (function, config); every run's parameters are still validated with it."""
    flows_module = importlib.import_module("prefect.flows")
    made = internal("prefect.flows", "ValidatedFunction")
    if getattr(made, "remembered", False):
        return

    def validated_function(function: Any, config: Any = None) -> Any:
        key = (function, json.dumps(config, sort_keys=True, default=repr))
        with _PARAMETER_MODELS_LOCK:
            if key not in _PARAMETER_MODELS:
                _PARAMETER_MODELS[key] = made(function, config=config)
            return _PARAMETER_MODELS[key]

    validated_function.remembered = True  # type: ignore[attr-defined]
    validated_function.unremembered = made  # type: ignore[attr-defined]
    flows_module.ValidatedFunction = validated_function


# the modules that call Prefect's `tags_as_related_resources` by that name (bound at their import)
TAG_RESOURCE_USERS = ("prefect.events.related", "prefect.flow_engine", "prefect.workers.base",
                      "prefect.runner._event_emitter")


def remember_tag_resources() -> None:
    """Make Prefect's events turn a set of tags into related resources once per set, not at every event.

    Every event a run emits (its task runs' state changes, its artifacts, the worker's) carries one related
    resource per tag of the run, its flow and deployment (`tags_as_related_resources`): a pydantic model each,
    whose validator reads a setting through `get_current_settings()` (~4% of the worker's CPU per job, py-spy).
    A tag's resource is two fixed labels: each set of tags is validated once by Prefect's own function, and
    every call gets new resources with the same labels (`model_construct`: nothing validated again, nothing
    shared between events)."""
    made = internal("prefect.events.related", "tags_as_related_resources")
    if getattr(made, "remembered", False):
        return
    resource = internal("prefect.events.related", "RelatedResource")
    for module in TAG_RESOURCE_USERS:
        internal(module, "tags_as_related_resources")  # raises if Prefect renamed it

    @cached(_TAG_RESOURCES, lock=_TAG_RESOURCES_LOCK)
    def labels_of(tags: frozenset[str]) -> list[dict[str, str]]:
        return [dict(r.root) for r in made(tags)]

    def tags_as_related_resources(tags: Any) -> list[Any]:
        return [resource.model_construct(dict(root)) for root in labels_of(frozenset(tags))]

    tags_as_related_resources.remembered = True  # type: ignore[attr-defined]
    tags_as_related_resources.unremembered = made  # type: ignore[attr-defined]
    for module in TAG_RESOURCE_USERS:
        importlib.import_module(module).tags_as_related_resources = tags_as_related_resources


def check_base_worker_hooks() -> None:
    """PrefectInternalsChanged if a BaseWorker hook SwarmSync overrides is gone or takes other parameters."""
    from prefect.workers.base import BaseWorker

    for name, expected in BASE_WORKER_HOOKS.items():
        hook = getattr(BaseWorker, name, None)
        if hook is None:
            raise PrefectInternalsChanged(f"BaseWorker.{name} is not in Prefect {prefect.__version__}")
        params = tuple(inspect.signature(hook).parameters)[: len(expected)]
        if params != expected:
            raise PrefectInternalsChanged(f"BaseWorker.{name}{params} no longer takes {expected}")


# --- patches applied in the worker's process -------------------------------------------------------
def cache_default_result_storage(ttl: float) -> None:
    """Prefect's engine asks the server for its default result storage at every flow run's
    start, synchronously (a new client and a blocking request in the worker's event loop).
    Job flows never persist results; ask at most once per `ttl` seconds in this process."""
    results = importlib.import_module("prefect.results")
    read = internal("prefect.results", "_read_server_default_result_storage_block_id")
    if not hasattr(read, "cache"):  # not wrapped yet
        results._read_server_default_result_storage_block_id = cached(TTLCache(maxsize=1, ttl=ttl))(read)


def skip_suspension_watch() -> None:
    """Prefect's flow engine watches every deployment run for suspension with a thread, an
    event loop and an events websocket of its own, and blocks the event loop until it is
    connected. The job flow never suspends, so in the worker's process that watch is a no-op:
    one websocket fewer per running job on the server, and no stall per job start."""
    engine = importlib.import_module("prefect.flow_engine")
    internal("prefect.flow_engine", "observe_flow_run_suspension")  # raises if Prefect renamed it
    engine.observe_flow_run_suspension = _no_suspension_watch


def heartbeats_on_the_event_loop() -> None:
    """Prefect's flow engine gives each flow run a heartbeat thread that sends an event at once,
    then one every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (180), waking every second to check
    whether the run ended: with 30 jobs running, 30 threads contend for the worker's GIL each
    second (~10% of the worker's samples per job) and the server stores one event per job.
    In the worker's process, an async run's heartbeats are timer callbacks on its event loop
    instead, the first one interval after the run started: a job shorter than the interval sends
    none (one event and its 7 resource rows fewer per job); a longer job beats as before (what
    Prefect's heartbeat automations watch for). Job flows never block their loop (Docker calls
    run in threads), which is what the thread was for. Runs outside an event loop keep Prefect's
    thread. SwarmSync finds crashed runs by their infrastructure id (swarmsync.recovery)."""
    engine = importlib.import_module("prefect.flow_engine")
    threaded = internal("prefect.flow_engine", "_send_heartbeats")
    if getattr(threaded, "on_the_loop", False):
        return

    @contextmanager
    def send_heartbeats(run_engine: Any, join_on_exit: bool = True) -> Iterator[None]:
        seconds = run_engine.heartbeat_seconds
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if seconds is None or loop is None:
            with threaded(run_engine, join_on_exit=join_on_exit):
                yield
            return
        resource, related = run_engine._build_heartbeat_event_template()
        handle: list[asyncio.TimerHandle] = []

        def beat() -> None:
            run = run_engine.flow_run
            if run is not None and run.state is not None and run.state.is_final():
                return
            try:
                run_engine._emit_flow_run_heartbeat(resource, related)
            except Exception:  # noqa: BLE001 - as Prefect's own loop: a lost heartbeat is not a failed run
                run_engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            handle[:] = [loop.call_later(seconds, beat)]

        handle.append(loop.call_later(seconds, beat))
        try:
            yield
        finally:
            handle[0].cancel()

    send_heartbeats.on_the_loop = True  # type: ignore[attr-defined]
    send_heartbeats.threaded = threaded  # type: ignore[attr-defined]
    engine._send_heartbeats = send_heartbeats


@contextmanager
def _no_suspension_watch(*_args: Any, **_kwargs: Any) -> Iterator[None]:
    yield


# --- patches applied in every process using Prefect's client ---------------------------------------


class _SharedTLSContexts:
    """Prefect's client module's view of `ssl`: `create_default_context(cafile=F)` returns one context per
    CA bundle file (and its modification time); everything else is the real `ssl` module. Only contexts
    made from a CA file are shared: Prefect's insecure path (PREFECT_API_TLS_INSECURE_SKIP_VERIFY) makes
    one without a file and then turns verification off on it, so it always gets a new one of its own."""

    def __init__(self, ssl_module: Any) -> None:
        self._real_ssl = ssl_module
        self._made: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real_ssl, name)

    def create_default_context(self, *args: Any, **kwargs: Any) -> Any:
        cafile = kwargs.get("cafile")
        if args or set(kwargs) != {"cafile"} or not cafile:
            return self._real_ssl.create_default_context(*args, **kwargs)
        try:
            key = (cafile, os.stat(cafile).st_mtime_ns)
        except OSError:  # a missing bundle: let ssl raise its own error
            return self._real_ssl.create_default_context(cafile=cafile)
        with self._lock:
            if key not in self._made:
                self._made[key] = self._real_ssl.create_default_context(cafile=cafile)
            return self._made[key]


def share_tls_contexts() -> None:
    """Make Prefect's clients (sync and async) share one verified TLS context per CA bundle.

    Each `get_client()` builds a new `ssl.SSLContext` from certifi's CA bundle (or
    PREFECT_API_SSL_CERT_FILE) even for an http:// API: ~20-35 ms of CPU, a fifth of the SwarmSync
    API's CPU on a listing of 200 jobs (py-spy) and more on short requests. A context is safe to
    share between connections and threads; Prefect never changes a verified one after making it."""
    module = importlib.import_module("prefect.client.orchestration")
    current = internal("prefect.client.orchestration", "ssl")
    if isinstance(current, _SharedTLSContexts):
        return
    module.ssl = _SharedTLSContexts(current)


# --- patches applied in the Prefect server's processes (swarmsync.prefect_server) -------------------
_PASSED: LRUCache[str, bool] = LRUCache(maxsize=256)


def remember_valid_schemas() -> None:
    """Make Prefect's schema validator check each distinct schema against the metaschema once."""
    validator = internal("prefect.utilities.schema_tools.validation", "_VALIDATOR")
    if getattr(validator.check_schema, "remembers_valid_schemas", False):
        return
    check = validator.check_schema  # a classmethod, bound to the validator class

    def check_schema(schema: Any, *args: Any, **kwargs: Any) -> None:
        key = json.dumps(schema, sort_keys=True, default=str)
        if key in _PASSED:
            return
        check(schema, *args, **kwargs)  # raises SchemaError for an invalid schema: not remembered
        _PASSED[key] = True

    check_schema.remembers_valid_schemas = True  # type: ignore[attr-defined]
    check_schema.unremembered = check  # type: ignore[attr-defined]
    validator.check_schema = staticmethod(check_schema)


_DEFAULTS: LRUCache[str, tuple[dict[str, Any], bool]] = LRUCache(maxsize=64)


def remember_template_defaults() -> None:
    """Make Prefect's server check a pool's job-variable defaults once per distinct template.

    At every flow run's creation Prefect validates each default of the pool's base job template
    on its own against the whole variables schema (a new JSON Schema validator per default): for
    SwarmSync's pool (30 defaults) ~12 ms of the server's CPU per run, for a result that only
    depends on the template. It is remembered by the template's canonical JSON, unless a default
    refers to a block (`$ref`: read from the database, it may change); the run's job variables
    are still validated against the schema at every creation, as before."""
    validation = importlib.import_module("prefect.server.api.validation")
    defaults_of = internal("prefect.server.api.validation", "_get_base_config_defaults")
    if getattr(defaults_of, "remembers_defaults", False):
        return

    async def base_config_defaults(session: Any, base_config: dict[str, Any],
                                   ignore_invalid_defaults: bool = True) -> tuple[dict[str, Any], bool]:
        properties = (base_config.get("variables") or {}).get("properties") or {}
        if any(isinstance(attrs.get("default"), dict) and "$ref" in attrs["default"]
               for attrs in properties.values() if isinstance(attrs, dict)):
            return await defaults_of(session, base_config, ignore_invalid_defaults)
        key = json.dumps([base_config, ignore_invalid_defaults], sort_keys=True, default=str)
        if key not in _DEFAULTS:
            _DEFAULTS[key] = await defaults_of(session, base_config, ignore_invalid_defaults)
        defaults, invalid = _DEFAULTS[key]
        return copy.deepcopy(defaults), invalid

    base_config_defaults.remembers_defaults = True  # type: ignore[attr-defined]
    base_config_defaults.unremembered = defaults_of  # type: ignore[attr-defined]
    validation._get_base_config_defaults = base_config_defaults


def immediate_sqlite_transactions() -> None:
    """Begin every transaction of Prefect's server on SQLite as IMMEDIATE (take the write lock first)."""
    AioSqliteConfiguration = internal("prefect.server.database.configurations", "AioSqliteConfiguration")  # noqa: N806
    begin_transaction = AioSqliteConfiguration.begin_transaction
    if getattr(begin_transaction, "immediate", False):
        return

    @asynccontextmanager
    async def begin_immediate(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncGenerator[Any, None]:
        async with begin_transaction(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_immediate.immediate = True  # type: ignore[attr-defined]
    begin_immediate.deferred = begin_transaction  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_immediate  # type: ignore[method-assign]


def cleanup_only_open_cancelled_runs() -> None:
    """Make Prefect's cancellation cleanup schedule work only for cancelled runs with open task runs.

    Every 20 s (`cancellation_cleanup.loop_seconds`) Prefect's `monitor_cancelled_flow_runs` reads
    *every* flow run cancelled in the last day and schedules a Docket task per run, which reads that
    run's unfinished task runs and cancels them; for nearly every run there are none (a job's task run
    ends with it). Its cost grows with the day's cancellations: with 4,300 cancelled runs in the last
    day (a 100,000-job history) the idle server spent 0.32 CPU-s per second on it (py-spy: the task
    itself and Docket's Redis scripts), and every API request waited behind it. The same query with
    "and it has a task run in a non-terminal state" (an indexed EXISTS on `task_run.flow_run_id`)
    schedules the same task for exactly the runs where it has something to do; the task, the key,
    the interval and the one-day window are Prefect's. Replaced in Prefect's registry of perpetual
    services under the same name, so Docket's key for it is unchanged."""
    cleanup = "prefect.server.services.cancellation_cleanup"
    monitor = internal(cleanup, "monitor_cancelled_flow_runs")
    if getattr(monitor, "only_open", False):
        return
    cancel_children = internal(cleanup, "cancel_child_task_runs")
    open_states = internal(cleanup, "NON_TERMINAL_STATES")
    registry = internal("prefect.server.services.perpetual_services", "_PERPETUAL_SERVICES")
    import sqlalchemy as sa
    from docket import CurrentDocket, Depends, Docket, Perpetual
    from prefect.server.database import PrefectDBInterface, provide_database_interface
    from prefect.server.schemas.states import StateType
    from prefect.settings.context import get_current_settings

    every = timedelta(seconds=get_current_settings().server.services.cancellation_cleanup.loop_seconds)

    async def monitor_cancelled_flow_runs(
        docket: Docket = CurrentDocket(),  # noqa: B008 - Docket's dependency markers, as Prefect declares them
        db: PrefectDBInterface = Depends(provide_database_interface),  # noqa: B008
        perpetual: Perpetual = Perpetual(automatic=True, every=every),  # noqa: B008
    ) -> None:
        """Prefect's monitor (same name, key, interval and window), for runs with open task runs only."""
        batch = 200
        query = (sa.select(db.FlowRun.id)
                 .where(db.FlowRun.state_type == StateType.CANCELLED, db.FlowRun.end_time.is_not(None),
                        db.FlowRun.end_time >= datetime.now(UTC) - timedelta(days=1),
                        sa.exists().where(db.TaskRun.flow_run_id == db.FlowRun.id,
                                          db.TaskRun.state_type.in_(open_states)))
                 .order_by(db.FlowRun.id).limit(batch))
        last = UUID(int=0)
        while True:
            async with db.session_context() as session:
                ids = (await session.execute(query.where(db.FlowRun.id > last))).scalars().all()
            for flow_run_id in ids:
                await docket.add(cancel_children, key=f"cancel-child-task-runs:{flow_run_id}")(flow_run_id)
            if len(ids) < batch:
                return
            last = ids[-1]

    monitor_cancelled_flow_runs.only_open = True  # type: ignore[attr-defined]
    monitor_cancelled_flow_runs.every_cancelled = monitor  # type: ignore[attr-defined]
    replaced = [config for config in registry if config.function is monitor]
    if not replaced:
        raise PrefectInternalsChanged(f"{cleanup}.monitor_cancelled_flow_runs is not a perpetual service in Prefect "
                                      f"{prefect.__version__} (swarmsync/prefect_internals.py)")
    for config in replaced:
        config.function = monitor_cancelled_flow_runs
    importlib.import_module(cleanup).monitor_cancelled_flow_runs = monitor_cancelled_flow_runs
