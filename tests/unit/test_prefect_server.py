"""The Prefect server speedups (swarmsync/prefect_server.py): a schema that passed Prefect's
metaschema check once is not checked again; an invalid schema is refused every time, and job
variables are still validated against the remembered schema on every call. On SQLite, two
transactions that read and then write both commit (the second waits for the lock) where
Prefect's deferred transactions refuse the second one."""

from __future__ import annotations

import pytest
from prefect.utilities.schema_tools import validation

from swarmsync import prefect_internals, prefect_server  # noqa: F401 - importing prefect_server applies the patches
from swarmsync.worker import SwarmSyncVariables


@pytest.fixture
def counted_checks(monkeypatch):
    """Prefect's validator with the speedup, counting the metaschema checks it really runs."""
    calls: list[dict] = []
    original = validation._VALIDATOR.check_schema
    original = getattr(original, "unremembered", original)  # importing swarmsync.prefect_server applied it

    def counting(schema, *args, **kwargs):
        calls.append(schema)
        return original(schema, *args, **kwargs)

    monkeypatch.setattr(validation._VALIDATOR, "check_schema", staticmethod(counting))
    monkeypatch.setattr(prefect_internals, "_PASSED", type(prefect_internals._PASSED)(maxsize=8))
    prefect_internals.remember_valid_schemas()
    yield calls
    monkeypatch.undo()


def test_a_valid_schema_is_checked_once(counted_checks):
    schema = SwarmSyncVariables.model_json_schema()
    validation.is_valid_schema(schema, preprocess=False)
    validation.is_valid_schema(dict(schema), preprocess=False)  # equal, not the same object
    assert len(counted_checks) == 1


def test_an_invalid_schema_is_refused_every_time(counted_checks):
    bad = {"type": "object", "properties": {"max_cpu": {"type": "not-a-type"}}}
    for _ in range(2):
        with pytest.raises(ValueError, match="Invalid schema"):
            validation.is_valid_schema(bad, preprocess=False)
    assert len(counted_checks) == 2


def test_values_are_still_validated_against_a_remembered_schema(counted_checks):
    schema = {"type": "object", "properties": {"max_cpu": {"type": "number", "exclusiveMinimum": 0}}}
    validation.validate({"max_cpu": 2}, schema, raise_on_error=True, preprocess=False)
    with pytest.raises(validation.ValidationError, match="max_cpu"):
        validation.validate({"max_cpu": -1}, schema, raise_on_error=True, preprocess=False)
    assert len(counted_checks) == 1


@pytest.fixture
def counted_defaults(monkeypatch):
    """Prefect's template-defaults check with the speedup, counting the checks it really runs."""
    from prefect.server.api import validation as server_validation

    calls: list[dict] = []
    patched = server_validation._get_base_config_defaults  # importing swarmsync.prefect_server applied it
    original = patched.unremembered

    async def counting(session, base_config, ignore_invalid_defaults=True):
        calls.append(base_config)
        return await original(session, base_config, ignore_invalid_defaults)

    monkeypatch.setattr(server_validation, "_get_base_config_defaults", counting)
    monkeypatch.setattr(prefect_internals, "_DEFAULTS", type(prefect_internals._DEFAULTS)(maxsize=8))
    prefect_internals.remember_template_defaults()
    yield server_validation, calls
    monkeypatch.undo()


def test_a_templates_defaults_are_checked_once_and_invalid_ones_still_dropped(counted_defaults):
    import anyio
    from prefect.server.api.validation import ValidationError

    from swarmsync.worker import SwarmSyncWorker

    server_validation, calls = counted_defaults
    template = SwarmSyncWorker.get_default_base_job_template()
    first = anyio.run(server_validation._get_base_config_defaults, None, template)
    first[0]["max_cpu"] = "changed by a caller"  # a copy: the remembered defaults stay as they were
    again = anyio.run(server_validation._get_base_config_defaults, None, dict(template))
    assert len(calls) == 1 and again[0]["max_cpu"] != "changed by a caller" and again[1] is False
    bad = {"variables": {"type": "object", "properties": {"max_cpu": {"type": "number", "default": "many"}}}}
    for _ in range(2):
        assert anyio.run(server_validation._get_base_config_defaults, None, bad) == ({}, True)
    # the run's job variables themselves are still validated at every call
    with pytest.raises(ValidationError, match="max_cpu"):
        anyio.run(server_validation._validate_work_pool_job_variables, None, "pool", template, {"max_cpu": "x"})
    assert len(calls) == 2


def test_a_default_that_refers_to_a_block_is_read_every_time(counted_defaults, monkeypatch):
    import anyio

    server_validation, calls = counted_defaults
    ref = {"variables": {"type": "object", "properties": {"docker_host": {
        "type": "object", "default": {"$ref": {"block_document_id": "00000000-0000-0000-0000-000000000000"}}}}}}

    async def resolve_nothing(default, session):
        return None  # as for a deleted block: the default is left out

    monkeypatch.setattr(server_validation, "_resolve_default_reference", resolve_nothing)
    for _ in range(2):
        assert anyio.run(server_validation._get_base_config_defaults, None, ref) == ({}, False)
    assert len(calls) == 2


async def _two_writers_that_read_first(tmp_path, begin_transaction) -> list[str]:
    """Two transactions on Prefect's own SQLite configuration that each read, then write, while
    the other also writes (what concurrent API requests do). Returns each one's outcome."""
    import anyio
    import sqlalchemy as sa
    from prefect.server.database.configurations import AioSqliteConfiguration

    tmp_path.mkdir()
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}")
    engine = await config.engine()
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE runs (n INTEGER)"))
        await conn.execute(sa.text("INSERT INTO runs VALUES (0)"))
    both_read = anyio.Event()
    readers: list[str] = []
    outcomes: list[str] = []

    async def writer(name: str, hold: float) -> None:
        try:
            async with await config.session(engine) as session, begin_transaction(config, session):
                await session.execute(sa.text("SELECT n FROM runs"))
                readers.append(name)
                if len(readers) == 2:
                    both_read.set()
                with anyio.move_on_after(0.5):  # immediate mode: the other one waits at BEGIN
                    await both_read.wait()
                await session.execute(sa.text("UPDATE runs SET n = n + 1"))
                await anyio.sleep(hold)
            outcomes.append("committed")
        except sa.exc.OperationalError as exc:
            outcomes.append(str(exc.orig))

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer, "a", 0.2)
        tg.start_soon(writer, "b", 0.0)
    async with engine.connect() as conn:
        outcomes.append(f"n={(await conn.execute(sa.text('SELECT n FROM runs'))).scalar()}")
    await engine.dispose()
    return sorted(outcomes)


def test_sqlite_writers_queue_instead_of_failing(tmp_path):
    import anyio
    from prefect.server.database.configurations import AioSqliteConfiguration

    immediate = AioSqliteConfiguration.begin_transaction
    assert immediate.immediate  # importing swarmsync.prefect_server applied it
    deferred = immediate.deferred
    assert anyio.run(_two_writers_that_read_first, tmp_path / "immediate", immediate) == [
        "committed", "committed", "n=2"
    ]
    # Prefect's own deferred transactions: the second writer is refused at once
    outcome = anyio.run(_two_writers_that_read_first, tmp_path / "deferred", deferred)
    assert outcome[:2] == ["committed", "database is locked"] and outcome[2] == "n=1", outcome
