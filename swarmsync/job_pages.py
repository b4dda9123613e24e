"""Pages of a job listing, in a total order: by offset (`page_at_offset`, kept for compatibility) and by
cursor. Keyset paging: a cursor names the last job of a page, and the next page is read from
there by its key (expected start time, id), so page 500 costs what page 1 costs.

A listing is two sections (swarmsync.jobs.list_jobs): jobs already due, newest first, then jobs not yet
due, soonest first. "Due" is fixed when the walk starts (the cursor carries that instant), so every job is
listed once, in the section it was in at the start: one that falls due during the walk stays among the
later ones, and one submitted during the walk (due after the walk's start) comes with them, at the end.

A cursor is opaque to callers (URL-safe base64 of a small JSON document) and carries no more than a
position: the section, the time and id of the last job listed, and the walk's start. It grants nothing:
every page is read with the caller's own project scope and filters, so a cursor taken from another
user's listing only says where to start in the caller's own jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.schemas.filters import FlowFilter, FlowRunFilter, FlowRunFilterExpectedStartTime
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort

from swarmsync.errors import InvalidError
from swarmsync.job_rows import JobPage  # noqa: F401 - a page of rows, still `swarmsync.job_pages.JobPage`

DUE, LATER = "due", "later"
TICK = timedelta(microseconds=1)  # Prefect keeps times to the microsecond: `before_`/`after_` are inclusive


class CursorError(InvalidError):
    """A cursor that is not one this API gave out (the message says only that)."""


@dataclass(frozen=True)
class JobCursor:
    """The position after one listed job: its section, expected start time and id, and the walk's `now`."""

    section: str
    at: datetime
    id: UUID
    now: datetime

    def encode(self) -> str:
        raw = json.dumps({"s": self.section, "t": self.at.isoformat(), "i": str(self.id), "n": self.now.isoformat()},
                         separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> JobCursor:
        try:
            fields = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(section=fields["s"], at=datetime.fromisoformat(fields["t"]), id=UUID(fields["i"]),
                         now=datetime.fromisoformat(fields["n"]))
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
            raise CursorError("not a job listing cursor (use X-Next-Cursor of the previous page)") from None
        if cursor.section not in (DUE, LATER) or cursor.at.tzinfo is None or cursor.now.tzinfo is None:
            raise CursorError("not a job listing cursor (use X-Next-Cursor of the previous page)")
        return cursor


PREFECT_PAGE = 200  # the most runs Prefect's API returns per read


def section_filter(conditions: dict[str, Any], times: dict[str, datetime]) -> FlowRunFilter:
    """The runs matching `conditions` whose expected start time is within `times` (`before_`/`after_`)."""
    return FlowRunFilter(**conditions, expected_start_time=FlowRunFilterExpectedStartTime(**times))


def page_at_offset(client: Any, flows: FlowFilter, conditions: dict[str, Any], section: dict[str, datetime],
                  newest_first: bool, offset: int, limit: int) -> list[FlowRun]:
    """Runs `offset`..`offset + limit` of `section` in a total order: by expected start time
    (newest or soonest first), then by id. Prefect sorts by time alone, so runs sharing a time
    come in any order, and one that straddles a page edge could show on both pages or on neither
    (PostgreSQL's top-N sort orders ties differently for different LIMIT/OFFSET). The page is read
    as Prefect sorts it, with the run just before and just after it: when neither shares the time
    at its edge of the page, the page holds every run of its edge times and is exact (one request,
    the usual case: 10,000 jobs page as fast as 100). Otherwise, at each of its two edge times, the
    runs at exactly that time are read and placed by their rank (how many come strictly before
    that time, plus their order by id)."""
    if limit <= 0:
        return []
    sort = FlowRunSort.EXPECTED_START_TIME_DESC if newest_first else FlowRunSort.EXPECTED_START_TIME_ASC
    # the page and its two neighbours in one read: when neither neighbour shares its edge's time,
    # every run at the edge times is on the page and the page is exact as read (the usual case,
    # one request); otherwise the runs at a shared edge time are placed by rank below
    before = 1 if offset > 0 else 0
    window: list[FlowRun] = []
    wanted = limit + before + 1
    while len(window) < wanted:  # Prefect answers at most PREFECT_PAGE runs per read
        chunk = client.read_flow_runs(flow_filter=flows, flow_run_filter=section_filter(conditions, section), sort=sort,
                                      limit=min(wanted - len(window), PREFECT_PAGE),
                                      offset=offset - before + len(window))
        window += chunk
        if len(chunk) < PREFECT_PAGE:
            break
    page = window[before:before + limit]
    if not page:
        return page
    after = window[before + limit] if len(window) > before + limit else None
    if (not before or window[0].expected_start_time != page[0].expected_start_time) and (
            after is None or after.expected_start_time != page[-1].expected_start_time):
        return sorted(page, key=lambda run: (run.expected_start_time, run.id), reverse=newest_first)
    edges = {page[0].expected_start_time, page[-1].expected_start_time}
    picked = [run for run in page if run.expected_start_time not in edges]
    tick = timedelta(microseconds=1)
    for at in edges:
        earlier = {"after_": at + tick} if newest_first else {"before_": at - tick}  # strictly before `at` here
        ahead = client.count_flow_runs(flow_filter=flows,
                                       flow_run_filter=section_filter(conditions, {**section, **earlier}))
        tied: list[FlowRun] = []
        while batch := client.read_flow_runs(
                flow_filter=flows, flow_run_filter=section_filter(conditions, {"before_": at, "after_": at}),
                sort=FlowRunSort.ID_DESC, limit=200, offset=len(tied)):
            tied += batch
            if len(batch) < 200:
                break
        tied.sort(key=lambda run: run.id, reverse=newest_first)
        picked += [run for rank, run in enumerate(tied, start=ahead) if offset <= rank < offset + limit]
    picked.sort(key=lambda run: (run.expected_start_time, run.id), reverse=newest_first)
    return picked


def _key(run: FlowRun) -> tuple[datetime, UUID]:
    return run.expected_start_time, run.id


def _read_all(client: Any, flows: FlowFilter, flt: FlowRunFilter, sort: FlowRunSort, limit: int) -> list[FlowRun]:
    """Up to `limit` runs (any number: Prefect answers at most PREFECT_PAGE per read)."""
    runs: list[FlowRun] = []
    while len(runs) < limit:
        chunk = client.read_flow_runs(flow_filter=flows, flow_run_filter=flt, sort=sort,
                                      limit=min(limit - len(runs), PREFECT_PAGE), offset=len(runs))
        runs += chunk
        if len(chunk) < PREFECT_PAGE:
            break
    return runs


def _at(client: Any, flows: FlowFilter, conditions: dict[str, Any], at: datetime) -> list[FlowRun]:
    """Every run due at exactly `at` (a batch sent with one `at` shares it)."""
    return _read_all(client, flows, section_filter(conditions, {"before_": at, "after_": at}), FlowRunSort.ID_DESC,
                     10**9)


def page_after(client: Any, flows: FlowFilter, conditions: dict[str, Any], section: str, at: datetime,
               after_id: UUID | None, limit: int) -> list[FlowRun]:
    """Up to `limit` runs of `section` that come after (`at`, `after_id`) in its order: (time, id)
    descending for DUE, ascending for LATER. `after_id` None: from `at` itself (DUE: `at` included,
    the first page; LATER: strictly after `at`, where the due section ended).

    Two indexed reads whatever the depth: the runs sharing `at` that follow `after_id` (usually none),
    then the runs strictly beyond `at`, sorted by time, one more than needed: when that one shares the
    time of the page's last run, every run at that time is read and the page is cut by id, so a
    page edge never splits a batch of runs with one time (they would come in any order)."""
    newest_first = section == DUE
    picked: list[FlowRun] = []
    if after_id is not None:
        tied = [run for run in _at(client, flows, conditions, at)
                if (run.id < after_id if newest_first else run.id > after_id)]
        picked = sorted(tied, key=_key, reverse=newest_first)[:limit]
    elif newest_first:
        at = at + TICK  # the first page: `at` (now) itself is due
    wanted = limit - len(picked)
    if wanted <= 0:
        return picked
    beyond = {"before_": at - TICK} if newest_first else {"after_": at + TICK}
    sort = FlowRunSort.EXPECTED_START_TIME_DESC if newest_first else FlowRunSort.EXPECTED_START_TIME_ASC
    window = _read_all(client, flows, section_filter(conditions, beyond), sort, wanted + 1)
    if len(window) > wanted and window[wanted].expected_start_time == window[wanted - 1].expected_start_time:
        edge = window[wanted - 1].expected_start_time  # a batch straddles the page's end: take it by id
        inside = [run for run in window[:wanted] if run.expected_start_time != edge]
        at_edge = sorted(_at(client, flows, conditions, edge), key=_key, reverse=newest_first)
        window = inside + at_edge[:wanted - len(inside)]
    return picked + sorted(window[:wanted], key=_key, reverse=newest_first)
