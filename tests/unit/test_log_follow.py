"""The log follower's cursor: batches of Prefect-shaped reads (timestamp >= cursor, sorted by
timestamp only, ties in any order) give every line once, in order, one request per read."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from swarmsync.log_follow import END_LOGGER, LogEntry, LogFollower, follow

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeLog:
    """Reads like Prefect's read_logs: `after_` inclusive, ORDER BY timestamp only (ties shuffled)."""

    def __init__(self, shuffle_ties: bool = True) -> None:
        self.rows: list[LogEntry] = []
        self.requests = 0
        self.shuffle_ties = shuffle_ties

    def add(self, n: int, ts_step_us: int = 1, name: str = "prefect.flow_runs.stdout") -> None:
        start = len(self.rows)
        last = self.rows[-1].timestamp if self.rows else T0
        for i in range(start, start + n):
            ts = last + timedelta(microseconds=ts_step_us * ((i - start) // 3))  # three lines per timestamp
            self.rows.append(LogEntry(ts, name, str(i), f"id-{i}"))

    def read(self, since, limit, offset):
        self.requests += 1
        rows = [r for r in self.rows if since is None or r.timestamp >= since]
        rng = random.Random(self.requests if self.shuffle_ties else 0)
        rows.sort(key=lambda r: (r.timestamp, rng.random()))
        return rows[offset:offset + limit]


def drain(follower: LogFollower) -> list[LogEntry]:
    out: list[LogEntry] = []
    while True:
        new, more = follower.read()
        out += new
        if not more:
            return out


def test_batches_give_every_line_once_in_order_with_ties_at_batch_edges():
    log = FakeLog()
    follower = LogFollower(log.read, limit=10)
    seen: list[LogEntry] = []
    for chunk in (7, 25, 1, 0, 40):
        log.add(chunk)
        seen += drain(follower)
    assert sorted(int(e.message) for e in seen) == list(range(73))  # none missing, none twice
    assert [e.timestamp for e in seen] == sorted(e.timestamp for e in seen)  # in order (ties: any order)


def test_requests_grow_with_batches_not_lines():
    log = FakeLog()
    log.add(10_000)
    follower = LogFollower(log.read, limit=200)
    assert len(drain(follower)) == 10_000
    assert log.requests <= 10_000 // 200 + 2
    log.requests = 0
    assert follower.read() == ([], False)  # an idle poll is one request
    assert log.requests == 1


def test_more_lines_at_one_timestamp_than_a_batch():
    """(Never seen: one thread logs them, microseconds apart.) Paged by offset, which needs the
    database to return ties in the same order each time, as PostgreSQL and SQLite do for one plan."""
    log = FakeLog(shuffle_ties=False)
    log.rows = [LogEntry(T0, "prefect.flow_runs.stdout", str(i), f"id-{i}") for i in range(25)]
    follower = LogFollower(log.read, limit=10)
    got: list[LogEntry] = []
    for _ in range(10):
        got += drain(follower)
    assert sorted(int(e.message) for e in got) == list(range(25))


def test_follow_reads_until_the_engine_s_last_line_after_the_final_state():
    log = FakeLog()
    log.add(5)
    polls = {"n": 0}

    def finished() -> bool:
        polls["n"] += 1
        if polls["n"] == 2:  # final now, but its last lines arrive a poll later
            return True
        if polls["n"] == 3:
            log.add(4)
            log.rows.append(LogEntry(log.rows[-1].timestamp + timedelta(seconds=1), END_LOGGER,
                                     "Finished in state Completed()", "end"))
        return polls["n"] >= 2

    lines = [e.message for e in follow(log.read, finished, poll=0, limit=6, grace=60)]
    assert sorted(lines[:-1], key=int) == [*map(str, range(9))]
    assert lines[-1] == "Finished in state Completed()"


def test_follow_gives_up_after_the_grace_without_the_last_line():
    log = FakeLog()
    log.add(2)
    assert [e.message for e in follow(log.read, lambda: True, poll=0, grace=0)] == ["0", "1"]
