"""Prefect's server as `swarmsync up` runs it: `python -m swarmsync.prefect_server server start ...`
is Prefect's own CLI (same arguments, same server) with one speedup applied first.

The speedup: each flow run created from a deployment has its job variables validated
against the work pool's variables schema, and Prefect checks that *schema* against JSON
Schema's 2020-12 metaschema twice per run (`is_valid_schema`, then `jsonschema.validate`).
For SwarmSync's pool (20 documented host-policy variables) one check costs ~45 ms of CPU
on a 2-core machine, so ~90 ms of every job submission went to re-proving that an
unchanged schema is a valid schema. A schema that passed the check once is remembered
(by its canonical JSON) and not checked again; a schema that fails is checked, and
refused, every time. The job variables themselves are still validated on every run.

Applied at import, so it also holds in the API processes uvicorn spawns for
`--workers N` (a spawned process imports the parent's main module again).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cachetools import LRUCache

_PASSED: LRUCache[str, bool] = LRUCache(maxsize=256)


def remember_valid_schemas() -> None:
    """Make Prefect's schema validator check each distinct schema against the metaschema once."""
    from prefect.utilities.schema_tools import validation

    validator = validation._VALIDATOR
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


remember_valid_schemas()


if __name__ == "__main__":
    from prefect.cli import app

    sys.exit(app())
