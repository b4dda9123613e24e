"""Who submitted a job and which project it belongs to: the SwarmSync API records both on every
run, schedule and template it creates.

A job's record is a pair of Prefect tags, `swarmsync.user:<name>` and `swarmsync.project:<name>`
(shown on the run in the Prefect UI and filterable there and through the API), plus the labels
`swarmsync.user` and `swarmsync.project`. Only SwarmSync sets them: tags of those forms given by
a caller (in a JobSpec, a schedule or a template) are removed before anything is created, so
nobody can claim to be someone else or to write into another project. Runs created without
the API (embedded mode, Prefect's own tools) carry no user, and belong to the default project.

Templates and schedules are named per project: a project's `nightly` is stored as
`<project>--nightly` (the default project's under its bare name, as before projects), so two
projects may both have one (`stored_name`).

    >>> user_tag("alice")
    'swarmsync.user:alice'
    >>> without_user_tags(["nightly", "swarmsync.user:bob", "swarmsync.project:x"])
    ['nightly']
    >>> stored_name("data", "nightly"), stored_name("default", "nightly")
    ('data--nightly', 'nightly')
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

USER_TAG_PREFIX = "swarmsync.user:"
USER_LABEL = "swarmsync.user"
PROJECT_TAG_PREFIX = "swarmsync.project:"
PROJECT_LABEL = "swarmsync.project"
DEFAULT_PROJECT = "default"
_RESERVED = (USER_TAG_PREFIX, PROJECT_TAG_PREFIX, "swarmsync.pipeline:", "swarmsync.step:")  # pipelines.py


def user_tag(username: str) -> str:
    return f"{USER_TAG_PREFIX}{username}"


def project_tag(project: str) -> str:
    return f"{PROJECT_TAG_PREFIX}{project}"


def without_user_tags(tags: Iterable[str]) -> list[str]:
    """`tags` without any `swarmsync.user:`, `swarmsync.project:` (or a pipeline's `swarmsync.pipeline:`,
    `swarmsync.step:`) tag (case-insensitive: Prefect tags are
    free text)."""
    return [t for t in tags if not t.strip().lower().startswith(_RESERVED)]


def owner_tags(user: str | None, project: str | None) -> list[str]:
    """The tags that record who submitted a run and its project."""
    return [*([user_tag(user)] if user else []), project_tag(project or DEFAULT_PROJECT)]


def owner_labels(user: str | None, project: str | None) -> dict[str, str]:
    return {**({USER_LABEL: user} if user else {}), PROJECT_LABEL: project or DEFAULT_PROJECT}


def _tagged(tags: Iterable[str] | None, prefix: str) -> str | None:
    for tag in tags or []:
        if tag.startswith(prefix):
            return tag.removeprefix(prefix)
    return None


def submitted_by(run: Any) -> str | None:
    """The user who submitted this flow run (or owns this schedule) through the API, or None."""
    return (getattr(run, "labels", None) or {}).get(USER_LABEL) or _tagged(getattr(run, "tags", None),
                                                                           USER_TAG_PREFIX)


def project_of(run: Any) -> str:
    """The project of a flow run or deployment (the default one when it names none: made before projects)."""
    return ((getattr(run, "labels", None) or {}).get(PROJECT_LABEL) or _tagged(getattr(run, "tags", None),
                                                                                PROJECT_TAG_PREFIX)
            or DEFAULT_PROJECT)


def project_of_tags(tags: Iterable[str] | None) -> str:
    return _tagged(tags, PROJECT_TAG_PREFIX) or DEFAULT_PROJECT


def owner_of_tags(tags: Iterable[str] | None) -> str | None:
    return _tagged(tags, USER_TAG_PREFIX)


def stored_name(project: str | None, name: str) -> str:
    """The name a project's template or schedule is stored under (the Prefect block or deployment name)."""
    project = project or DEFAULT_PROJECT
    return name if project == DEFAULT_PROJECT else f"{project}--{name}"
