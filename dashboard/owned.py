"""A page's list of things users own (schedules, pipeline schedules, job templates, alerts): the table, or
a note when there are none, and the pick among those the user may change (its owner, the project's
maintainers, admins), which the page's buttons act on; the API decides again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from swarmsync.dashboard import session

Row = dict[str, Any]


def label(row: Row) -> str:
    """A thing as a pick shows it: its name, with its project outside the default one."""
    return row["name"] if row["project"] == "default" else f"{row['project']}/{row['name']}"


def qualified(row: Row) -> str:
    """A thing as a pick shows it with its project always named."""
    return f"{row['project']}/{row['name']}"


def table(rows: list[Row], empty: str, key: str | None = None) -> None:
    """`rows` as a table (widget `key`), or `empty` as a note when there are none."""
    if not rows:
        st.info(empty)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=key)


def pick(rows: list[Row], title: str, *, key: str, permission: str,
         shown: Callable[[Row], str] = label) -> Row | None:
    """A select box `title` (widget `key`) among the rows the user may change, shown as `shown` makes them,
    when the user has `permission` and there are such rows; the picked row, else None (no select box)."""
    mine = {shown(row): row for row in rows if session.may_change(row["project"], row["owner"] or None)}
    if not (session.may(permission) and mine):
        return None
    return mine[st.selectbox(title, list(mine), key=key)]


def listing(rows: list[Row], empty: str, title: str, *, table_key: str | None, pick_key: str,
            permission: str) -> Row | None:
    """`table` then `pick`: the list of such things, and the one of them the page's buttons act on."""
    table(rows, empty, key=table_key)
    return pick(rows, title, key=pick_key, permission=permission)
