"""docs/settings.md's table lists every setting of `SwarmSyncSettings`, one row each, with its
env var name and default; no row names a setting that does not exist.

On a failure the message says which row to add, remove or fix, with a row to paste made from
the model (so a merge that adds settings on two branches is fixed by pasting)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from swarmsync.settings import SwarmSyncSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
HEADER = "| variable | default | meaning |"
PREFIX = SwarmSyncSettings.model_config["env_prefix"]


def env_name(field: str) -> str:
    return f"{PREFIX}{field}".upper()


def rendered_default(value: Any) -> str | None:
    """The default as the table shows it (`180`, `~/.swarmsync`); None: unset or empty, shown in words."""
    if value is None or value == "" or value is PydanticUndefined:
        return None
    return str(value)


def doc_rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) cells of the first table under HEADER."""
    lines = DOC.read_text().splitlines()
    start = lines.index(HEADER) + 2  # skip the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        rows.append((cells[0], cells[1] if len(cells) > 1 else "", " | ".join(cells[2:])))
    return rows


def row_to_paste(field: str) -> str:
    info = SwarmSyncSettings.model_fields[field]
    default = rendered_default(info.default)
    return f"| `{env_name(field)}` | {f'`{default}`' if default is not None else 'unset'} | {info.description} |"


def test_every_setting_has_a_description_in_the_model():
    undocumented = [env_name(f) for f, info in SwarmSyncSettings.model_fields.items() if not info.description]
    assert undocumented == [], f"give these Field(description=...) in swarmsync/settings.py: {undocumented}"


def test_the_settings_table_has_one_row_per_setting_with_its_default():
    fields = {env_name(field): field for field in SwarmSyncSettings.model_fields}
    problems: list[str] = []
    seen: dict[str, int] = {}
    for variable, default_cell, meaning in doc_rows():
        match = re.fullmatch(r"`([A-Z0-9_]+)`", variable)
        if match is None:
            problems.append(f"row {variable!r}: the first cell must be one `SWARMSYNC_NAME` (one row per setting)")
            continue
        name = match.group(1)
        seen[name] = seen.get(name, 0) + 1
        if name not in fields:
            problems.append(f"extra row {name}: no such setting in swarmsync/settings.py; remove it")
            continue
        if not meaning:
            problems.append(f"row {name}: its meaning is empty")
        default = rendered_default(SwarmSyncSettings.model_fields[fields[name]].default)
        if default is not None and not default_cell.startswith(f"`{default}`"):
            problems.append(f"row {name}: default cell {default_cell!r} must start with `{default}` (the model's)")
        if default is None and re.match(r"`(?!SWARMSYNC_)", default_cell):
            problems.append(f"row {name}: default cell {default_cell!r} shows a value, but the setting has none "
                            "(say 'unset', '(none)' or where it comes from)")
    problems += [f"row {name} appears {count} times; keep one" for name, count in seen.items() if count > 1]
    problems += [f"missing row {name}; add: {row_to_paste(field)}"
                 for name, field in fields.items() if name not in seen]
    assert problems == [], "docs/settings.md, table of SWARMSYNC_* settings:\n  " + "\n  ".join(problems)
