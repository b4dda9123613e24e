"""Server CPU split by process, the same way in bench/scale.py and bench/run.py (issue 29).

scale.py used to sum every process of the server host and run.py only the Prefect server process,
so their "server CPU per job" did not count the same things. Here:

- `classify(cmdline)` names what a process is (Prefect API, Prefect services, PostgreSQL, Redis,
  HAProxy, SwarmSync API, ...) from its command line;
- `cpu_by_kind(pids)` sums user+system CPU (children waited for included: a PostgreSQL backend that
  ended is in the postmaster's cutime) per kind;
- `PgBackendCpu` samples the backends of some databases (`pg_stat_activity` pids, /proc/PID/stat), for a
  PostgreSQL shared with others (run.py's), where the postmaster's total is not ours. It is a sample:
  a backend that lives less than the interval is missed, and the CPU of one after its last sample too;
  `sessions` (PostgreSQL's own count of connections made) says how many were missed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")

# (kind, test on the command line's words); first match wins
KINDS = (
    ("Prefect services", lambda argv: "swarmsync.prefect_server" in argv and "services" in argv),
    ("Prefect API", lambda argv: "swarmsync.prefect_server" in argv and "--no-services" in argv),
    ("Prefect API+services", lambda argv: "swarmsync.prefect_server" in argv or ("prefect" in argv
                                                                                 and "server" in argv)),
    ("SwarmSync API", lambda argv: "swarmsync.cli.main" in argv and "api" in argv),
    ("SwarmSync worker", lambda argv: "swarmsync.cli.main" in argv and "worker" in argv),
    ("pipelines worker", lambda argv: "prefect" in argv and "worker" in argv),
    ("swarmsync up", lambda argv: "swarmsync.cli.main" in argv and "up" in argv),
    ("PostgreSQL", lambda argv: bool(argv) and (argv[0].startswith("postgres") or argv[0].endswith("/postgres")
                                                 or (argv[0] == "runuser" and any(a.endswith("/postgres")
                                                                                  for a in argv)))),
    ("Redis", lambda argv: bool(argv) and "redis-server" in argv[0]),
    ("HAProxy", lambda argv: bool(argv) and argv[0].endswith("haproxy")),
    ("sshd", lambda argv: bool(argv) and (argv[0].startswith("sshd") or argv[0].endswith("/sshd"))),
)


def classify(argv: list[str]) -> str:
    """What a process is, from its command line (/proc/PID/cmdline split on NUL); 'other' when unknown.
    PostgreSQL's backends rename themselves ('postgres: user db addr idle'): argv[0] starts with it."""
    for kind, test in KINDS:
        if test(argv):
            return kind
    return "other"


def ticks(pid: int, children: bool = True) -> int:
    """utime+stime (+cutime+cstime) of a process, in clock ticks; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rfind(")") + 2:].split()
    return sum(int(x) for x in fields[11:15 if children else 13])


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def cpu_by_kind(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far per kind of process (children waited for included)."""
    out: dict[str, float] = {}
    for pid in pids:
        kind = classify(cmdline(pid))
        out[kind] = out.get(kind, 0.0) + ticks(pid) / HZ
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Per-kind difference; a kind absent before counts from 0 (its processes started in between)."""
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in {*after, *before}}


class PgBackendCpu(threading.Thread):
    """CPU of the backends serving `databases`, sampled every `interval` s from pg_stat_activity and /proc.

    `mark()` returns a snapshot; `between(a, b)` the CPU seconds per database between two snapshots: a
    backend first seen after `a` counts from 0 (it was born in between), a backend that ended counts up to
    its last sample. Needs /proc access to the backends (same machine and PID namespace, root or postgres)."""

    def __init__(self, conninfo: str, databases: list[str], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.conninfo, self.databases, self.interval = conninfo, list(databases), interval
        self.seen: dict[int, tuple[str, int]] = {}  # pid -> (database, last ticks read)
        self.own_pid: int | None = None  # the sampler's own backend (not in `databases` unless named)
        self.lock, self.stopping, self.ready = threading.Lock(), threading.Event(), threading.Event()
        self.error: str | None = None
        self.sessions: dict[str, int] = {}  # database -> PostgreSQL's count of sessions made to it

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                self.own_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                while not self.stopping.is_set():
                    rows = conn.execute("SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(%s) "
                                        "AND pid <> pg_backend_pid()", (self.databases,)).fetchall()
                    read = {pid: (db, ticks(pid, children=False)) for pid, db in rows}
                    with self.lock:
                        for pid, (db, t) in read.items():
                            if t or pid not in self.seen:
                                self.seen[pid] = (db, t)
                        self.sessions = dict(conn.execute(
                            "SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY(%s)",
                            (self.databases,)).fetchall())
                    self.ready.set()
                    self.stopping.wait(self.interval)
        except Exception as exc:  # noqa: BLE001 - the bench goes on without this split
            self.error = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    def mark(self) -> dict:
        self.ready.wait(30)
        with self.lock:
            return {"seen": dict(self.seen), "sessions": dict(self.sessions),
                    "own": ticks(self.own_pid, children=False) if self.own_pid else 0}

    @staticmethod
    def between(a: dict, b: dict) -> dict:
        """CPU seconds per database from snapshot a to b, the backends seen and the sessions PostgreSQL
        counted (more sessions than backends seen: short-lived ones were missed), and the sampler's own."""
        cpu: dict[str, float] = {}
        for pid, (db, t) in b["seen"].items():
            t0 = a["seen"].get(pid, (db, 0))[1]
            cpu[db] = cpu.get(db, 0.0) + max(0, t - t0) / HZ
        new = sum(1 for pid in b["seen"] if pid not in a["seen"])
        sessions = sum(b["sessions"].get(db, 0) - a["sessions"].get(db, 0) for db in b["sessions"])
        return {"cpu": cpu, "new_backends": new, "sessions": sessions, "own": (b["own"] - a["own"]) / HZ}

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
