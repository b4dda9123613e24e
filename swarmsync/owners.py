"""Who submitted a job: the SwarmSync API records its caller on every run it creates.

The record is a Prefect tag `swarmsync.user:<name>` (shown on the run in the Prefect UI
and filterable there and through the API) plus the label `swarmsync.user` = name. Only
the API sets it, from the authenticated principal: tags of that form given by a caller
(in a JobSpec, a schedule or a template) are removed before anything is created, so
nobody can claim to be someone else. Runs created without the API (embedded mode,
Prefect's own tools) carry no user.

    >>> user_tag("alice")
    'swarmsync.user:alice'
    >>> without_user_tags(["nightly", "swarmsync.user:bob"])
    ['nightly']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

USER_TAG_PREFIX = "swarmsync.user:"
USER_LABEL = "swarmsync.user"


def user_tag(username: str) -> str:
    return f"{USER_TAG_PREFIX}{username}"


def without_user_tags(tags: Iterable[str]) -> list[str]:
    """`tags` without any `swarmsync.user:` tag (case-insensitive: Prefect tags are free text)."""
    return [t for t in tags if not t.strip().lower().startswith(USER_TAG_PREFIX)]


def submitted_by(run: Any) -> str | None:
    """The user who submitted this flow run through the API, or None."""
    for tag in getattr(run, "tags", None) or []:
        if tag.startswith(USER_TAG_PREFIX):
            return tag.removeprefix(USER_TAG_PREFIX)
    return None
