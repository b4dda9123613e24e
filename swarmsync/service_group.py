"""Jobs with services (compose jobs): the main container and its services run as one group on a
private network of the job's own, started in dependency order, health-gated, streamed, and
stopped and removed together (see docs/compose-jobs.md).

Every container and the network carry the job's labels (`swarmsync.docker_runner.job_labels`)
plus, on containers, `io.swarmsync.service` (the name) and `io.swarmsync.role` (main/service): a
worker that resumes the run after its predecessor died adopts the whole group by them, and
recovery removes what a finished run left. Blocking Docker SDK code; the job flow calls it from
threads, like `docker_runner`. Single-container jobs never come here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from swarmsync.docker_runner import (
    LABEL_FLOW_RUN,
    ContainerRun,
    ResolvedImage,
    create_container,
    find_job_containers,
    hardened,
    job_labels,
    limits,
    list_containers,
    new_container,
    thread_with_context,
)
from swarmsync.errors import Error
from swarmsync.output import Interleaved, OutputCapture
from swarmsync.policy import HostPolicy
from swarmsync.spec import JobSpec
from swarmsync.usage import Usage, total

LABEL_SERVICE = "io.swarmsync.service"
LABEL_ROLE = "io.swarmsync.role"  # "main" or "service"
POLL_SECONDS = 0.2
_WORDS = {"service_started": "started", "service_healthy": "healthy",
          "service_completed_successfully": "completed successfully"}


class _Abort(Error):
    """The group stops before its main container ran: reason ('timeout', 'cancelled', 'service')."""

    def __init__(self, reason: str, message: str | None = None):
        super().__init__(message or reason)
        self.reason, self.message = reason, message


@dataclass
class Member:
    """One container of the group, with what the manifest says of it."""

    name: str
    role: str
    run: ContainerRun
    image: ResolvedImage | None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None


def network_name(flow_run_id: str) -> str:
    return f"swarmsync-{flow_run_id}"


def find_job_networks(client: docker.DockerClient, flow_run_id: str | None = None, label: list[str] | None = None):
    labels = label or [f"{LABEL_FLOW_RUN}={flow_run_id}"]
    return client.networks.list(filters={"label": labels})


def remove_network(client: docker.DockerClient, flow_run_id: str) -> None:
    for network in find_job_networks(client, flow_run_id):
        try:
            network.remove()
        except docker.errors.NotFound:
            pass


def _stop(container: Container, grace: float) -> None:
    try:
        container.stop(timeout=grace)
    except docker.errors.NotFound:
        pass
    except (requests.exceptions.RequestException, docker.errors.APIError):
        try:
            container.kill()
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass


def _parallel(fn, items) -> None:
    threads = [thread_with_context(fn, item) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class GroupRun:
    """The life of a job's group after creation; the same surface as `ContainerRun` for the flow
    (wait, stop, harvest, remove, cancel_requested, cap_reason, container), plus `failure` (which
    service failed the job, and why) and `members` (for the manifest)."""

    def __init__(self, client: docker.DockerClient, spec: JobSpec, flow_run_id: str, members: dict[str, Member],
                 interleaved: Interleaved, inputs: bytes | None, adopted: bool = False):
        self.client, self.spec, self.flow_run_id = client, spec, flow_run_id
        self.members = members
        self.main = members[spec.main_service]
        self.interleaved = interleaved
        self.inputs = inputs
        self.adopted = adopted
        self.cancel_requested = self.main.run.cancel_requested
        self.failure: str | None = None
        self._stopping = threading.Event()
        self._ending = False
        self._main_started = adopted
        self._lock = threading.Lock()

    @property
    def container(self) -> Container:
        return self.main.run.container

    @property
    def cap_reason(self) -> str | None:
        return self.main.run.cap_reason or next(
            (m.run.cap_reason for m in self.members.values() if m.run.cap_reason), None)

    def services(self) -> list[Member]:
        return [self.members[name] for name in self.spec.service_order()]

    # -- start -----------------------------------------------------------------------------------

    def _state(self, member: Member) -> dict[str, Any]:
        member.run.container.reload()
        return member.run.container.attrs.get("State", {})

    def _gate(self, deps: dict[str, str], waiter: str, deadline: float | None) -> None:
        """Wait until every dependency meets its condition; _Abort naming the first that cannot."""
        limit = time.monotonic() + self.spec.service_start_timeout
        while True:
            pending = None
            for dep, condition in deps.items():
                state = self._state(self.members[dep])
                status, code = state.get("Status"), state.get("ExitCode")
                health = state.get("Health") or {}
                ended = status in ("exited", "dead")
                if condition == "service_completed_successfully":
                    if ended and code == 0:
                        continue
                    if ended:
                        self._fail(f"service {dep} exited with code {code}; {waiter} needed it to complete "
                                   "successfully")
                elif ended and not (condition == "service_started" and (
                        self.spec.services[dep].allow_exit or code == 0 and self.spec.may_exit(dep))):
                    self._fail(f"service {dep} exited with code {code} before {waiter} started"
                               f"{self._last_lines(dep)}")
                elif condition == "service_healthy":
                    if health.get("Status") == "healthy":
                        continue
                    if health.get("Status") == "unhealthy":
                        log = (health.get("Log") or [{}])[-1]
                        said = (log.get("Output") or "").strip()[-200:]
                        self._fail(f"service {dep} is unhealthy: its healthcheck failed "
                                   f"{self.spec.services[dep].healthcheck.retries} time(s) in a row "
                                   f"(last: exit code {log.get('ExitCode')}{': ' + said if said else ''})")
                elif status in ("running", "exited", "dead", "paused", "restarting"):
                    continue
                pending = pending or (dep, condition)
            if pending is None:
                return
            if self._stopping.is_set():
                raise _Abort("cancelled" if self.cancel_requested.is_set() else "stopped")
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _Abort("timeout")
            if now >= limit:
                dep, condition = pending
                self._fail(f"service {dep} did not become {_WORDS[condition]} within "
                           f"{self.spec.service_start_timeout:g} s (service_start_timeout); {waiter} waited for it")
            self._stopping.wait(POLL_SECONDS)

    def _last_lines(self, name: str) -> str:
        try:
            tail = self.members[name].run.container.logs(tail=3).decode(errors="replace").strip()
        except docker.errors.APIError:
            return ""
        return f" (last output: {tail[-200:]!r})" if tail else ""

    def _fail(self, message: str) -> None:
        raise _Abort("service", message)

    def _start_all(self, deadline: float | None) -> None:
        for member in self.services():
            self._gate(self.spec.services[member.name].depends_on, member.name, deadline)
            member.run.start(None)
            member.started_at = time.time()
        self._gate(self.spec.waits_for(), self.spec.main_service, deadline)
        with self._lock:
            if self._stopping.is_set():
                raise _Abort("cancelled" if self.cancel_requested.is_set() else "stopped")
            self.main.run.start(self.inputs)
            self._main_started = True
        self.main.started_at = time.time()

    # -- while the main container runs -----------------------------------------------------------

    def _monitor(self, member: Member) -> None:
        """A service that exits while the job runs fails the job, unless it may exit."""
        try:
            status = member.run.container.wait()
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return
        member.exit_code = status.get("StatusCode")
        member.finished_at = time.time()
        if self._ending or self.spec.may_exit(member.name) and member.exit_code == 0:
            return
        if self.spec.services[member.name].allow_exit:
            return
        with self._lock:
            if self.failure is None:
                self.failure = (f"service {member.name} exited with code {member.exit_code} while the job ran"
                                f"{self._last_lines(member.name)}")
        self._stopping.set()
        self.main.run.stop()

    def wait(self, timeout: float | None) -> tuple[int | None, str | None]:
        """Start (unless adopted) in dependency order, run the main container to its end, then stop
        the services. Returns the main's exit code and the reason (as `ContainerRun.wait`, plus
        'service': a service failed the job, see `failure`)."""
        deadline = time.monotonic() + timeout if timeout else None
        exit_code, reason = None, None
        try:
            if not self.adopted:
                self._start_all(deadline)
            monitors = [thread_with_context(self._monitor, m) for m in self.services()]
            for monitor in monitors:
                monitor.start()
            remaining = max(deadline - time.monotonic(), 0.001) if deadline else None
            exit_code, reason = self.main.run.wait(remaining)
            self.main.exit_code = exit_code
        except _Abort as abort:
            reason = abort.reason
            if abort.reason == "service":
                self.failure = abort.message
        finally:
            self._ending = True
            self.main.finished_at = self.main.finished_at or time.time()
            _parallel(lambda m: _stop(m.run.container, 5), self.services())
            self._close_services()
        if self.cancel_requested.is_set():
            reason = "cancelled"
        elif self.failure and reason in (None, "stopped"):
            reason = "service"
        if reason == "stopped":
            reason = "cancelled"
        return exit_code, reason

    def _close_services(self) -> None:
        for member in self.services():
            for reader in member.run._readers:
                reader.join(timeout=10)
            try:
                state = self._state(member)
                if member.exit_code is None and state.get("Status") in ("exited", "dead"):
                    member.exit_code = state.get("ExitCode")
            except docker.errors.APIError:
                pass
            member.finished_at = member.finished_at or (time.time() if member.started_at else None)
            member.run.capture.close()
            member.run.meter.stop()

    def usage(self, wall_seconds: float) -> Usage:
        """The group's use: the sum of its containers' (swarmsync/usage.py)."""
        return total([m.run.usage for m in self.members.values()], wall_seconds)

    def stop(self) -> None:
        """Cancel or a size cap: stop the main container (or the start-up); the services follow."""
        with self._lock:
            self._stopping.set()
            started = self._main_started
        if started:
            self.main.run.stop()

    def harvest(self, output_dir: str, dest, max_bytes: int | None = None) -> str | None:
        return self.main.run.harvest(output_dir, dest, max_bytes)

    def remove(self) -> None:
        """Every container (stopped with a grace first, then with its anonymous volumes), then the network."""
        remove_group(self.client, self.flow_run_id)

    # -- the manifest ------------------------------------------------------------------------------

    def manifest(self) -> dict[str, dict[str, Any]]:
        from datetime import UTC, datetime

        def iso(ts: float | None) -> str | None:
            return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None

        out = {}
        for name, m in self.members.items():
            files = ["stdout.txt", "stderr.txt"] if m.role == "main" else [
                f"services/{name}/stdout.txt", f"services/{name}/stderr.txt"]
            out[name] = {
                "role": m.role, "image": (self.spec.image if m.role == "main" else self.spec.services[name].image),
                "image_digest": m.image.digest if m.image else None, "exit_code": m.exit_code,
                "started_at": iso(m.started_at), "finished_at": iso(m.finished_at),
                "duration_seconds": round(m.finished_at - m.started_at, 3) if m.started_at and m.finished_at else None,
                "files": files,
            }
        return out


def remove_group(client: docker.DockerClient, flow_run_id: str) -> None:
    """Stop (grace, then kill) and remove every container of the run with its anonymous volumes, then its network."""
    containers = list_containers(client, f"{LABEL_FLOW_RUN}={flow_run_id}")
    _parallel(lambda c: _stop(c, 5), [c for c in containers if c.status == "running"])

    def rm(container: Container) -> None:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    _parallel(rm, containers)
    remove_network(client, flow_run_id)


def group_output(spool, sink, log_cap: int, secrets: list[str], max_bytes: int | None,
                 spec: JobSpec) -> tuple[dict[str, OutputCapture], Interleaved]:
    """A capture per container (the main's stdout/stderr at the spool's top, each service's under
    services/NAME/), all feeding one interleaved output.txt; log lines prefixed with the name."""
    interleaved = Interleaved(spool / "output.txt", secrets)
    captures = {}
    for name in [spec.main_service, *spec.services]:
        folder = spool if name == spec.main_service else spool / "services" / name
        captures[name] = OutputCapture(
            folder, lambda stream, line, n=name: sink(stream, line if stream == "marker" else f"{n} | {line}"),
            log_cap, secrets=secrets, max_bytes=max_bytes, interleaved=interleaved, label=name,
        )
    return captures, interleaved


def start_or_adopt_group(
    client: docker.DockerClient, spec: JobSpec, images: dict[str, ResolvedImage], policy: HostPolicy,
    flow_run_id: str, secret_values: dict[str, str], captures: dict[str, OutputCapture], interleaved: Interleaved,
    inputs: bytes | None, worker: str | None = None, pool: str | None = None,
) -> tuple[GroupRun, float | None, float, bool]:
    """Create the group (network, then every container, none started: `GroupRun.wait` starts them),
    or adopt the one a dead worker of this run left. A group whose main container never started is
    removed and created again. Returns as `docker_runner.start_or_adopt`."""
    spec = policy.check(spec)
    existing = find_job_containers(client, flow_run_id)
    if existing:
        group = _adopt(client, spec, images, flow_run_id, existing, captures, interleaved)
        if group is not None:
            elapsed = group.main.run.elapsed()
            remaining = max(spec.timeout - elapsed, 0.001) if spec.timeout else None
            return group, remaining, time.time() - elapsed, True
        remove_group(client, flow_run_id)
    remove_network(client, flow_run_id)
    labels = job_labels(flow_run_id, worker, pool)
    net = network_name(flow_run_id)
    members: dict[str, Member] = {}
    try:
        # a pool that keeps jobs off any network (default_network 'none') gets an internal one: the
        # containers reach each other, nothing else
        client.networks.create(net, driver="bridge", labels=labels, internal=policy.default_network == "none")

        def attach(alias: str) -> dict[str, Any]:
            return {"network": net, "hostname": alias,
                    "networking_config": {net: client.api.create_endpoint_config(aliases=[alias])}}

        for name, service in spec.services.items():
            container = new_container(
                client, images[name].ref, command=service.docker_command(), entrypoint=service.entrypoint,
                environment=service.env, working_dir=service.working_dir, user=service.user or "",
                labels={**labels, LABEL_SERVICE: name, LABEL_ROLE: "service"},
                name=f"swarmsync-{flow_run_id}-{name}",
                privileged=service.privileged and policy.allow_privileged,
                healthcheck=service.healthcheck.docker() if service.healthcheck else None,
                **hardened(policy), **limits(service.memory_bytes, service.cpu, service.pids_limit),
                **attach(name),
            )
            members[name] = Member(name, "service", ContainerRun(client, container, captures[name]), images[name])
        main = create_container(client, spec, images[spec.main_service], policy, flow_run_id, secret_values,
                                worker, pool, group={"labels": {LABEL_SERVICE: spec.main_service, LABEL_ROLE: "main"},
                                                     "network": attach(spec.main_service)})
        members[spec.main_service] = Member(spec.main_service, "main", ContainerRun(client, main,
                                            captures[spec.main_service]), images[spec.main_service])
    except BaseException:
        remove_group(client, flow_run_id)
        raise
    _on_cap(members)
    return GroupRun(client, spec, flow_run_id, members, interleaved, inputs), spec.timeout, time.time(), False


def _on_cap(members: dict[str, Member]) -> None:
    """A service's output reaching the pool's max_output_bytes stops the job, as the main's does."""
    main = next(m for m in members.values() if m.role == "main")
    for member in members.values():
        if member.role == "service" and member.run.capture.max_bytes is not None:
            def reached(run=member.run) -> None:
                run.cap_reason = "output-cap"
                thread_with_context(main.run.stop).start()
            member.run.capture.on_limit = reached


def _adopt(client, spec: JobSpec, images: dict[str, ResolvedImage], flow_run_id: str, existing: list[Container],
           captures: dict[str, OutputCapture], interleaved: Interleaved) -> GroupRun | None:
    """The group a dead worker left, when its main container was started; else None."""
    by_name = {c.labels.get(LABEL_SERVICE): c for c in existing}
    names = [spec.main_service, *spec.services]
    if any(name not in by_name for name in names):
        return None
    main = by_name[spec.main_service]
    if main.attrs.get("State", {}).get("Status") == "created":
        return None
    members = {}
    for name in names:
        run = ContainerRun(client, by_name[name], captures[name])
        run.adopt()
        state = run.container.attrs.get("State", {})
        members[name] = Member(name, "main" if name == spec.main_service else "service", run, images.get(name),
                               started_at=time.time() - run.elapsed() if state.get("StartedAt") else None)
    _on_cap(members)
    return GroupRun(client, spec, flow_run_id, members, interleaved, None, adopted=True)
