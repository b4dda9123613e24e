"""The CLI options of the field catalogue's models, written down ahead of time: `option_table.json` beside this
file holds, per model ("module:Class"), one row per option (`OptionRow`), as `swarmsync.catalogue` derives it
from the model. `submit`, `schedule create` and `template save` make their options from it, so they start
without importing the JobSpec models and pydantic (~0.1 s; docs/benchmarks.md, CLI start).

    python -m swarmsync.cli.option_table          # rewrite option_table.json from the models

Pitfall: the file is derived, not edited. After changing a catalogue model (a field, its flags, help or
type), run the command above; `tests/unit/test_option_table.py` fails, naming it, until the file matches the
models. A model not in the file has its options made from the model itself (slower, still right).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel

TABLE = Path(__file__).with_name("option_table.json")
# the models whose fields are CLI options (swarmsync/cli/catalogue_options.py)
MODELS = ("swarmsync.spec:JobSpec", "swarmsync.policy:HostPolicy")
ITEM_TYPES = {"int": int, "float": float, "str": str}


@dataclass(frozen=True)
class OptionRow:
    """One option: the field's `name`, its `kind` (`swarmsync.catalogue.Kind`), the `flags` it declares (none:
    Typer names it `--field-name`), the `flag` errors name, its `help`, whether it is a `size` (bytes, given
    as '64m') and, for a list of numbers, the `item` type's name."""

    name: str
    kind: str
    flags: tuple[str, ...]
    flag: str
    help: str
    size: bool = False
    item: str = "str"

    @classmethod
    def from_json(cls, row: dict) -> OptionRow:
        return cls(**{**row, "flags": tuple(row["flags"])})


def model_class(model: str) -> type[BaseModel]:
    """The model a "module:Class" name names (imported)."""
    module, _, name = model.partition(":")
    return getattr(importlib.import_module(module), name)


def rows_of(model: type[BaseModel]) -> list[OptionRow]:
    """The options of `model`, derived from it now: its fields the CLI reaches, not positional words."""
    from swarmsync import catalogue

    rows = []
    for name, info in catalogue.fields(model, catalogue.CLI).items():
        reach = catalogue.reach(info)
        if reach.argument:
            continue
        rows.append(OptionRow(name=name, kind=catalogue.kind(info), flags=reach.flags,
                              flag=catalogue.flags(name, info)[0], help=catalogue.help_text(info), size=reach.size,
                              item=catalogue.item_type(info).__name__))
    return rows


@cache
def _stored() -> dict[str, list[dict]]:
    try:
        return json.loads(TABLE.read_text())
    except FileNotFoundError:
        return {}


def rows(model: str) -> list[OptionRow]:
    """The options of the model named "module:Class": from option_table.json, else derived from the model."""
    stored = _stored().get(model)
    if stored is None:
        return rows_of(model_class(model))
    return [OptionRow.from_json(row) for row in stored]


def table() -> dict[str, list[dict]]:
    """What option_table.json should hold: every model's rows, derived now."""
    return {model: [asdict(row) | {"flags": list(row.flags)} for row in rows_of(model_class(model))]
            for model in MODELS}


def dumps(rows_by_model: dict[str, list[dict]]) -> str:
    """The file's text: a row per line, so that a changed field is a changed line."""
    models = (f"  {json.dumps(model)}: [\n" + ",\n".join(f"    {json.dumps(row)}" for row in model_rows) + "\n  ]"
              for model, model_rows in rows_by_model.items())
    return "{\n" + ",\n".join(models) + "\n}\n"


def main() -> None:
    TABLE.write_text(dumps(table()))
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
