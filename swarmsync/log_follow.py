"""Following a run's log in batches: O(1) requests per poll whatever the line rate, in
order, without gaps or duplicates.

Prefect sorts logs by timestamp only (no tie-breaker) and its `after_` filter is inclusive.
The follower keeps a cursor (the newest timestamp read, and the ids already read at exactly
that timestamp) and asks for "at or after the cursor, oldest first, up to LOG_BATCH": the
lines at the cursor's timestamp come back again and are dropped by id, everything newer is
new. Lines of one run reach Prefect in the order they were logged (one log worker per
process, batches sent in order), so nothing older than the cursor can arrive later.

A run's last line is the flow engine's "Finished in state ..." (logger `prefect.flow_runs`),
logged after the final state is set: once the run is final, the follower reads on until it
sees that line (everything logged before it is then stored), or for FINAL_GRACE_S when it
never comes (a crashed worker)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import NamedTuple

LOG_BATCH = 200  # lines per request: Prefect's default (and largest) API limit
FINAL_GRACE_S = 3.0  # after the run is final, wait this long at most for its last lines
END_LOGGER = "prefect.flow_runs"
END_PREFIX = "Finished in state "


class LogEntry(NamedTuple):
    timestamp: datetime
    name: str
    message: str
    id: str


# (since: inclusive lower bound or None, limit, offset) -> up to `limit` entries, oldest first
ReadBatch = Callable[[datetime | None, int, int], list[LogEntry]]


class LogFollower:
    """A cursor over one run's log; `read()` costs exactly one request."""

    def __init__(self, read_batch: ReadBatch, limit: int = LOG_BATCH) -> None:
        self._read = read_batch
        self.limit = limit
        self.cursor: datetime | None = None
        self._at_cursor: set[str] = set()  # ids already returned whose timestamp == cursor
        self.ended = False  # the flow engine's last line was read

    def read(self) -> tuple[list[LogEntry], bool]:
        """New entries in order, and whether more may be waiting right now (a full batch)."""
        # more lines at one timestamp than a batch holds (never seen in practice): page through them
        offset = len(self._at_cursor) if len(self._at_cursor) >= self.limit else 0
        batch = self._read(self.cursor, self.limit, offset)
        new = [e for e in batch if e.id not in self._at_cursor]
        for entry in new:
            if self.cursor is None or entry.timestamp > self.cursor:
                self.cursor, self._at_cursor = entry.timestamp, set()
            if entry.timestamp == self.cursor:
                self._at_cursor.add(entry.id)
            if entry.name == END_LOGGER and entry.message.startswith(END_PREFIX):
                self.ended = True
        return new, len(batch) >= self.limit and bool(new)


def follow(
    read_batch: ReadBatch, is_finished: Callable[[], bool], poll: float = 0.5,
    limit: int = LOG_BATCH, grace: float = FINAL_GRACE_S,
) -> Iterator[LogEntry]:
    """Yield a run's log entries as they arrive until it ends and its last lines are read.
    Each poll is one state read plus one batch read (more batches at once only while they
    come back full)."""
    follower = LogFollower(read_batch, limit)
    final_since: float | None = None
    while True:
        finished = is_finished()
        while True:
            new, more = follower.read()
            yield from new
            if not more:
                break
        if finished:
            if follower.ended:
                return
            final_since = final_since or time.monotonic()
            if time.monotonic() - final_since >= grace:
                return
        time.sleep(poll)
