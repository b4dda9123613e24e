"""The Prefect server speedup (swarmsync/prefect_server.py): a schema that passed Prefect's
metaschema check once is not checked again; an invalid schema is refused every time, and job
variables are still validated against the remembered schema on every call."""

from __future__ import annotations

import pytest
from prefect.utilities.schema_tools import validation

from swarmsync import prefect_server
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
    monkeypatch.setattr(prefect_server, "_PASSED", type(prefect_server._PASSED)(maxsize=8))
    prefect_server.remember_valid_schemas()
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
