"""A worker's liveness is its PID *and* who that PID is: the machine's boot and the process's
start time. After a reboot (or PID wrap-around) a reused PID must not keep a dead worker's
runs looking alive. Ids of the old form HOST:PID:RUN_ID are still judged by PID alone."""

import os
import socket
import subprocess
import sys
import uuid

from prefect.client.schemas.objects import FlowRun

from swarmsync.recovery import is_orphaned
from swarmsync.worker import infrastructure_id


def _run(infra: str | None) -> FlowRun:
    return FlowRun(id=uuid.uuid4(), flow_id=uuid.uuid4(), infrastructure_pid=infra)


def _fields(run_id: str) -> list[str]:
    return infrastructure_id(run_id).split(":")


def test_this_workers_own_id_names_a_live_worker_and_ends_with_the_run_id():
    run_id = str(uuid.uuid4())
    ident = infrastructure_id(run_id)
    assert ident.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert ident.rsplit(":", 1)[-1] == run_id  # what kill_infrastructure takes
    assert not is_orphaned(_run(ident))


def test_a_live_pid_from_another_boot_is_a_dead_worker():
    host, pid, boot, started, run_id = _fields("r")
    other_boot = str(uuid.uuid4())
    assert other_boot != boot
    assert is_orphaned(_run(f"{host}:{pid}:{other_boot}:{started}:{run_id}"))


def test_a_live_pid_that_started_at_another_time_is_a_reused_pid():
    host, pid, boot, started, run_id = _fields("r")
    assert is_orphaned(_run(f"{host}:{pid}:{boot}:{int(started) + 1}:{run_id}"))


def test_a_dead_pid_is_dead_in_either_form_and_other_hosts_are_not_judged():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host, _pid, boot, started, _ = _fields("r")
    assert is_orphaned(_run(f"{host}:{dead.pid}:{boot}:{started}:x"))
    assert is_orphaned(_run(f"{host}:{dead.pid}:x"))  # the old form: PID alone
    assert not is_orphaned(_run(f"{host}:{os.getpid()}:x"))
    assert not is_orphaned(_run(f"other-host:{dead.pid}:{boot}:{started}:x"))
    assert not is_orphaned(_run(f"{host}:notapid:{boot}:{started}:x"))
