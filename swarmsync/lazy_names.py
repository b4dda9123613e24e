"""Module attributes imported on first use (PEP 562 `__getattr__`), for the modules a light command imports
(`swarmsync`, `swarmsync.client`, `swarmsync.archive`): their public names keep working while the command
line starts without Prefect (docs/benchmarks.md, CLI start)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def loader(module: str, table: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A `__getattr__` for `module`: `table` maps each name to the module holding it (the name is that module
    itself when it is the module's last part); a value, once imported, is kept in `namespace` (the module's
    globals), so later reads are plain."""

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target = importlib.import_module(where)
        value = target if where.rsplit(".", 1)[-1] == name else getattr(target, name)
        namespace[name] = value
        return value

    return __getattr__
