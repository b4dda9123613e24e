"""Running one JobSpec as a Docker container: image resolution, safe creation with
limits, input payloads, live output, timeout/OOM, harvest and removal.

Everything here is blocking Docker SDK code; the job flow calls it from threads.
"""

from __future__ import annotations

import base64
import contextvars
import gzip
import hashlib
import io
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container
from docker.types import CancellableStream

from swarmsync.docker_transport import share_one_pool
from swarmsync.errors import RefusedError
from swarmsync.output import OutputCapture
from swarmsync.policy import BRIDGE, HostPolicy
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError, parse_image
from swarmsync.usage import Usage, UsageMeter

LABEL_JOB = "io.swarmsync.job"
LABEL_FLOW_RUN = "io.swarmsync.flow-run-id"
LABEL_WORKER = "io.swarmsync.worker"
LABEL_POOL = "io.swarmsync.pool"
LABEL_INSTANCE = "io.swarmsync.instance"  # the Prefect API URL: one SwarmSync installation
LABEL_NETWORK = "io.swarmsync.network"
ISOLATED_NETWORK = "swarmsync-isolated"  # Docker's bridge, with inter-container traffic off
ICC_OPTION = "com.docker.network.bridge.enable_icc"
STOP_GRACE_SECONDS = 5


class JobRefused(RefusedError, RuntimeError):
    """The job cannot run as asked (bad payload checksum, image missing, policy); nothing ran."""


CLIENT_POOL_SIZE = 256  # HTTP connections kept per engine: each running job holds up to three (attach, wait, stats)


def docker_client(engine: Any | None = None) -> docker.DockerClient:
    """A client of `engine` (a pool's prefect-docker `DockerHost` block); with none,
    SWARMSYNC_DOCKER_HOST, else Docker's own environment.

    One client per engine per process, shared by all jobs: a new client costs an API version
    round trip and a connection (~15 ms, twice per job before)."""
    key = _client_key(engine)
    client = _cached_client(key)
    if client is None:
        url = get_settings().docker_host
        if engine is not None:
            client = engine.get_client()
        elif url:
            client = docker.DockerClient(base_url=url, max_pool_size=CLIENT_POOL_SIZE)
        else:
            client = docker.from_env(max_pool_size=CLIENT_POOL_SIZE)
        share_one_pool(client, CLIENT_POOL_SIZE)
        with _clients_lock:
            client = _clients.setdefault(key, client)
    return client


async def docker_client_async(engine: Any | None = None) -> docker.DockerClient:
    """`docker_client` for async code: the process's client at once when it exists (every job
    but the first), else made in a thread (a new client costs an API version round trip)."""
    return _cached_client(_client_key(engine)) or await anyio.to_thread.run_sync(docker_client, engine)


_clients: dict[str, docker.DockerClient] = {}
_clients_lock = threading.Lock()


def _client_key(engine: Any | None) -> str:
    return f"block:{engine.model_dump()!r}" if engine is not None else f"url:{get_settings().docker_host or ''}"


def _cached_client(key: str) -> docker.DockerClient | None:
    with _clients_lock:
        return _clients.get(key)


@dataclass
class ResolvedImage:
    ref: str  # what to create the container from (an image id when pinned by digest)
    image_id: str
    digest: str | None  # the repo digest when known, else the image id
    user: str | None = None  # the image's own USER (Config.User; empty: root)


def resolve_image(
    client: docker.DockerClient, spec: JobSpec, default_policy: str, login: Callable[[], None] | None = None
) -> ResolvedImage:
    """Find or pull the image per pull policy; a pinned digest must match what runs.
    `login` (the pool's registry credentials) is called before a pull, never otherwise."""
    name, tag, digest = parse_image(spec.image)
    policy = spec.pull_policy or default_policy
    image = None
    if policy != "always":
        image = _local_image(client, spec.image, digest)
    if image is None:
        if policy == "never":
            raise JobRefused(f"image {spec.image!r} is not on this Docker host and pull_policy is 'never'")
        try:
            if login is not None:
                login()
            if digest:
                image = client.images.pull(f"{name}@{digest}")
            else:
                image = client.images.pull(name, tag=tag or "latest")
        except docker.errors.APIError as exc:
            local = _local_image(client, spec.image, digest) if policy == "always" else None
            if local is None:
                raise JobRefused(f"image {spec.image!r} could not be pulled: {exc.explanation or exc}") from exc
            image = local
    repo_digests = [d.split("@", 1)[1] for d in image.attrs.get("RepoDigests", []) if "@" in d]
    if digest and digest not in repo_digests and image.id != digest:
        raise JobRefused(f"image {spec.image!r} resolved to {image.id}, which does not match the pinned digest")
    return ResolvedImage(
        ref=image.id if digest else spec.image,
        image_id=image.id,
        digest=(digest or (repo_digests[0] if repo_digests else image.id)),
        user=(image.attrs.get("Config") or {}).get("User") or "",
    )


def _local_image(client: docker.DockerClient, ref: str, digest: str | None):
    candidates = [ref] + ([digest] if digest else [])
    for candidate in candidates:
        try:
            return client.images.get(candidate)
        except docker.errors.ImageNotFound:
            continue
        except docker.errors.APIError:
            continue
    return None


def input_archive(spec: JobSpec) -> bytes | None:
    """A tar of the spec's input files, each verified against its SHA-256 first."""
    if not spec.inputs:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        made: set[str] = set()
        for item in spec.inputs:
            if item.content_b64 is not None:
                data = base64.b64decode(item.content_b64)
            else:
                try:
                    data = Path(item.source or "").read_bytes()
                except OSError as exc:
                    raise JobRefused(f"input file {item.path}: cannot read {item.source}: {exc}") from exc
            actual = hashlib.sha256(data).hexdigest()
            if actual != item.sha256:
                raise JobRefused(
                    f"input file {item.path}: SHA-256 mismatch (expected {item.sha256}, got {actual}); "
                    "the job was not started"
                )
            rel = PurePosixPath(item.path).relative_to("/")
            for parent in reversed(rel.parents[:-1]):
                if str(parent) not in made:
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    made.add(str(parent))
            info = tarfile.TarInfo(str(rel))
            info.size, info.mode, info.mtime = len(data), item.mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class ContainerOutcome:
    exit_code: int | None
    reason: str | None  # "timeout", "oom", "cancelled", "output-cap", "files-cap", "no-space", "missing" or None
    message: str
    started_at: float
    finished_at: float
    output_files: Path | None = None
    output_note: str | None = None
    extra: dict = field(default_factory=dict)


def job_labels(flow_run_id: str, worker: str | None = None, pool: str | None = None) -> dict[str, str]:
    """The labels on every container (and network) of a job: recovery and cleanup find them by these."""
    from swarmsync.connection import api_url

    labels = {LABEL_JOB: "1", LABEL_FLOW_RUN: flow_run_id, LABEL_INSTANCE: api_url()}
    if worker:
        labels[LABEL_WORKER] = worker
    if pool:
        labels[LABEL_POOL] = pool
    return labels


def hardened(policy: HostPolicy, writable: list[str] | None = None) -> dict[str, Any]:
    """What every container of a job gets, whatever it asks for; with the pool's storage bounds,
    a read-only root with a size-capped /tmp (and `writable` folders as anonymous volumes,
    removed with the container), and the engine's cap of the writable layer."""
    options: dict[str, Any] = {"detach": True, "stdin_open": False, "tty": False,
                               "security_opt": ["no-new-privileges"], "cap_drop": list(policy.cap_drop), "init": True}
    if policy.storage_size:
        options["storage_opt"] = {"size": str(policy.storage_size)}
    if policy.read_only_rootfs:
        writable = writable or []
        options["read_only"] = True
        if "/tmp" not in writable:
            options["tmpfs"] = {"/tmp": f"size={policy.scratch_size},mode=1777"}
        if writable:
            options["mounts"] = [docker.types.Mount(target=folder, source=None, type="volume") for folder in writable]
    return options


def writable_folders(spec: JobSpec) -> list[str]:
    """The folders a job's container writes to besides /tmp when its root is read-only: its
    output_dir and the folders of its input files (put there before it starts), outermost only."""
    folders = {str(PurePosixPath(item.path).parent) for item in spec.inputs}
    if spec.output_dir:
        folders.add(str(PurePosixPath(spec.output_dir)))
    folders.discard("/")
    return sorted(f for f in folders if not any(f != o and PurePosixPath(f).is_relative_to(o) for o in folders))


def split_archive(archive: bytes, folders: list[str]) -> dict[str, bytes]:
    """A tar of paths under / as one tar per folder (paths relative to it): with a read-only
    root, Docker takes files only into a volume, addressed by its own path."""
    parts: dict[str, tarfile.TarFile] = {}
    buffers: dict[str, io.BytesIO] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as source:
        for member in source.getmembers():
            path = PurePosixPath("/", member.name)
            folder = next((f for f in folders if path.is_relative_to(f) and path != PurePosixPath(f)), None)
            if folder is None:
                continue  # a parent folder of a volume: it exists already
            if folder not in parts:
                buffers[folder] = io.BytesIO()
                parts[folder] = tarfile.open(fileobj=buffers[folder], mode="w")  # noqa: SIM115 - closed below
            member.name = str(path.relative_to(folder))
            parts[folder].addfile(member, source.extractfile(member) if member.isfile() else None)
    for tar in parts.values():
        tar.close()
    return {folder: buffer.getvalue() for folder, buffer in buffers.items()}


_isolated: set[str] = set()  # engines (base URLs) whose isolated network this process has seen
_isolated_lock = threading.Lock()


def isolated_network(client: docker.DockerClient, again: bool = False) -> str:
    """SwarmSync's bridge network with inter-container traffic off, made once per engine (and
    again when it was deleted: `again`); what jobs on Docker's default network join instead.
    Race-safe: the engine refuses a second network of the name (check_duplicate), and then the
    existing one is used. One that lets containers talk is refused, not used."""
    key = client.api.base_url
    with _isolated_lock:
        if key in _isolated and not again:
            return ISOLATED_NETWORK
        _isolated.discard(key)
        try:
            network = client.networks.get(ISOLATED_NETWORK)
        except docker.errors.NotFound:
            try:
                network = client.networks.create(ISOLATED_NETWORK, driver="bridge", check_duplicate=True,
                                                 options={ICC_OPTION: "false"}, labels={LABEL_NETWORK: "isolated"})
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                network = client.networks.get(ISOLATED_NETWORK)  # made meanwhile by another worker
        if (network.attrs.get("Options") or {}).get(ICC_OPTION) != "false":
            raise JobRefused(f"Docker network {ISOLATED_NETWORK!r} exists and lets containers reach each other "
                             f"({ICC_OPTION} is not 'false'): remove it (docker network rm {ISOLATED_NETWORK}) and "
                             "SwarmSync makes it again")
        _isolated.add(key)
    return ISOLATED_NETWORK


def limits(memory: int | None, cpu: float | None, pids_limit: int | None) -> dict[str, Any]:
    return {"mem_limit": memory, "memswap_limit": memory,  # no swap beyond the memory limit
            "nano_cpus": int(cpu * 1e9) if cpu else None, "pids_limit": pids_limit}


def create_container(
    client: docker.DockerClient,
    spec: JobSpec,
    image: ResolvedImage,
    policy: HostPolicy,
    flow_run_id: str,
    secret_values: dict[str, str],
    worker: str | None = None,
    pool: str | None = None,
    group: dict[str, Any] | None = None,
) -> Container:
    """Create (not start) the job's container with limits and safe defaults: the job as the pool's
    policy resolves and checks it (`HostPolicy.check`), so what was checked is what runs.
    `group` (a job with services): extra labels and the private network with the main's alias."""
    spec = policy.check(spec)
    if spec.command is None and spec.entrypoint is None:
        config = image_config(client, image.image_id)
        if not config.get("Cmd") and not config.get("Entrypoint"):
            raise JobSpecError(f"image {spec.image!r} has no default command: give a command")
    labels = job_labels(flow_run_id, worker, pool)
    network: dict[str, Any] = {"network": spec.network}
    isolated = not group and not policy.shared_network and spec.network in (None, BRIDGE, "default")
    if group:
        labels.update(group["labels"])
        network = group["network"]
    elif isolated:
        network = {"network": isolated_network(client)}
    device_requests = None
    if spec.gpus:
        count = -1 if spec.gpus == "all" else int(spec.gpus)
        device_requests = [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]

    def create() -> Container:
        return new_container(
            client, image.ref,
            command=spec.docker_command(),
            entrypoint=spec.entrypoint,
            environment={**spec.env, **secret_values},
            working_dir=spec.working_dir,
            user=spec.user or "",
            labels=labels,
            name=f"swarmsync-{flow_run_id}",
            privileged=spec.privileged and policy.allow_privileged,
            device_requests=device_requests,
            **hardened(policy, writable_folders(spec)),
            **limits(spec.memory_bytes, spec.cpu, spec.pids_limit),
            **network,
        )

    try:
        try:
            return create()
        except docker.errors.NotFound as exc:
            if not isolated or "network" not in str(exc.explanation or exc):
                raise
            isolated_network(client, again=True)  # deleted since this process made it: made again
            return create()
    except docker.errors.APIError as exc:
        if policy.storage_size and "storage" in str(exc.explanation or exc).lower():
            raise JobRefused(f"this pool bounds each container's writable layer (storage_size), which this Docker "
                             f"engine cannot do: {exc.explanation or exc}") from exc
        raise


def new_container(client: docker.DockerClient, image: str, **kwargs: Any) -> Container:
    """`client.containers.create(image, **kwargs)` without the inspect docker-py makes after it (one request
    per job fewer): the model knows its id and name; `reload()` fills in the rest when it is needed."""
    from docker.models.containers import _create_container_args

    created = client.api.create_container(**_create_container_args(
        {**kwargs, "image": image, "version": client.api._version}))
    name = kwargs.get("name")
    return client.containers.prepare_model({"Id": created["Id"], **({"Name": f"/{name}"} if name else {})})


def image_config(client: docker.DockerClient, image_id: str) -> dict:
    return client.images.get(image_id).attrs.get("Config") or {}


def thread_with_context(target, *args) -> threading.Thread:
    """A reader thread that keeps the caller's context (Prefect settings and run context),
    so log lines it emits reach the right API and run."""
    return threading.Thread(target=contextvars.copy_context().run, args=(target, *args), daemon=True)


def attach_stream(api: docker.APIClient, container_id: str) -> Any:
    """The container's stdout and stderr as (out, err) frames from now on (docker-py's
    `attach(stream=True, demux=True, logs=False)`), without its inspect per call: docker-py
    asks the engine whether the container has a TTY, and a job's never has one (`hardened`)."""
    response = api._post(api._url("/containers/{0}/attach", container_id),
                         headers={"Connection": "Upgrade", "Upgrade": "tcp"},
                         params={"logs": 0, "stdout": 1, "stderr": 1, "stream": 1}, stream=True)
    return CancellableStream(api._read_from_socket(response, True, False, demux=True), response)


class ContainerRun:
    """One container's life after creation: inputs, attach, start, stream, wait, harvest."""

    def __init__(self, client: docker.DockerClient, container: Container, capture: OutputCapture):
        self.client = client
        self.container = container
        self.capture = capture
        self._readers: list[threading.Thread] = []
        self.cancel_requested = threading.Event()
        self.cap_reason: str | None = None  # "output-cap" or "files-cap" once a size cap was reached
        self.meter = UsageMeter(container)  # follows the container while it runs (swarmsync/usage.py)
        if capture.max_bytes is not None:
            capture.on_limit = self._output_cap_reached

    def _output_cap_reached(self) -> None:
        """stdout/stderr reached the pool's max_output_bytes: stop the container (in a thread
        of its own, so the reader keeps draining the stream meanwhile)."""
        self.cap_reason = "output-cap"
        thread_with_context(self.stop).start()

    def start(self, inputs: bytes | None) -> None:
        if inputs:
            if "HostConfig" not in self.container.attrs:  # made by `new_container`: its id and name alone
                self.container.reload()
            host = self.container.attrs.get("HostConfig") or {}
            if host.get("ReadonlyRootfs"):  # each file into its folder's volume (see `hardened`)
                folders = [m["Target"] for m in host.get("Mounts") or []]
                for folder, part in split_archive(inputs, folders).items():
                    self.container.put_archive(folder, part)
            else:
                self.container.put_archive("/", inputs)
        # attached before start, so the live stream has every byte; logs=True would also
        # replay the log so far, and output written during the attach handshake came twice
        sock = attach_stream(self.client.api, self.container.id)
        self._readers = [thread_with_context(self._pump, sock)]
        self._readers[0].start()
        self.container.start()
        self.meter.start()

    def adopt(self) -> None:
        """Take over a container started by a worker that died: replay its output so far
        from the log driver and follow the rest (one follower per stream, so the
        interleaving between stdout and stderr is approximate after a recovery)."""
        self.container.reload()
        self.meter.start()
        self._readers = [thread_with_context(self._follow, stream) for stream in ("stdout", "stderr")]
        for reader in self._readers:
            reader.start()

    def _follow(self, stream: str) -> None:
        try:
            chunks = self.container.logs(
                stream=True, follow=True, stdout=stream == "stdout", stderr=stream == "stderr"
            )
            for chunk in chunks:
                self.capture.feed(stream, chunk)
        except Exception:  # noqa: BLE001 - the stream ends when the container is removed
            pass

    def elapsed(self) -> float:
        """Seconds since the container started (for timeouts across a worker restart)."""
        started = self.container.attrs.get("State", {}).get("StartedAt", "")
        try:
            begun = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
            return max(0.0, time.time() - begun.timestamp())
        except ValueError:
            return 0.0

    def _pump(self, frames) -> None:
        try:
            for out, err in frames:
                if out:
                    self.capture.feed("stdout", out)
                if err:
                    self.capture.feed("stderr", err)
        except Exception:  # noqa: BLE001 - connection closes when the container is removed
            pass

    def wait(self, timeout: float | None) -> tuple[int | None, str | None]:
        """Block until exit; on timeout stop (SIGTERM, then SIGKILL after a grace)."""
        reason = None
        try:
            status = self.container.wait(timeout=timeout) if timeout else self.container.wait()
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            reason = "timeout"
            self.stop()
            status = self.container.wait()
        self.meter.stop()
        if self.cancel_requested.is_set():
            reason = "cancelled"
        for reader in self._readers:
            reader.join(timeout=10)
        self.capture.close()
        if self.capture.limit_reached and reason != "cancelled":
            reason = self.cap_reason = "output-cap"
        self.container.reload()
        state = self.container.attrs.get("State", {})
        if reason is None and state.get("OOMKilled"):
            reason = "oom"
        return status.get("StatusCode"), reason

    @property
    def usage(self) -> Usage:
        """What the container used (its last reading; final once `wait` returned)."""
        return self.meter.last

    def stop(self) -> None:
        try:
            self.container.stop(timeout=STOP_GRACE_SECONDS)
        except docker.errors.NotFound:
            pass
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            try:  # the engine did not confirm the stop in time: kill, and let wait() see the exit
                self.container.kill()
            except (docker.errors.APIError, requests.exceptions.RequestException):
                pass

    def harvest(self, output_dir: str, dest: Path, max_bytes: int | None = None) -> str | None:
        """Stream `output_dir` out of the container through gzip into `dest` (.tar.gz); returns a
        note if absent. Nothing raw is written: the tar stream from Docker is compressed as it
        arrives and counted; past `max_bytes` (the pool's max_files_bytes) the download stops,
        `dest` is deleted, `cap_reason` becomes "files-cap" and the note says so."""
        api = self.client.api
        response = api.get(api._url("/containers/{0}/archive", self.container.id), params={"path": output_dir},
                           stream=True)
        try:
            if response.status_code == 404:
                return f"output_dir {output_dir} did not exist in the container"
            api._raise_for_status(response)
            total = 0
            with gzip.open(dest, "wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    total += len(chunk)
                    if max_bytes is not None and total > max_bytes:
                        self.cap_reason = "files-cap"
                        break
                    out.write(chunk)
        finally:
            response.close()  # past a cap: Docker stops producing the rest
        if self.cap_reason == "files-cap":
            dest.unlink(missing_ok=True)
            return f"output_dir {output_dir} not archived: it exceeded the pool's max_files_bytes ({max_bytes} bytes)"
        return None

    def remove(self) -> None:
        """Remove the container with its anonymous volumes (an image's VOLUME, read-only roots' folders)."""
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


def start_or_adopt(
    client: docker.DockerClient, spec: JobSpec, image: ResolvedImage, policy: HostPolicy, flow_run_id: str,
    secret_values: dict[str, str], capture: OutputCapture, inputs: bytes | None,
    worker: str | None = None, pool: str | None = None,
) -> tuple[ContainerRun, float | None, float, bool]:
    """Start the run's container, or take over the one a dead worker of this run left
    behind: never a second container for one run. Returns the container run, the seconds
    left of the job's timeout, when the container started (epoch s) and whether it was adopted.
    The timeout is the resolved one (the pool's default or ceiling when the job names none)."""
    spec = policy.resolve(spec)
    container, taken = None, None
    for _ in range(3):
        # created first: the run's container has the run's name (`swarmsync-<flow run id>`), so the engine
        # refuses a second one (409) atomically, and only then is the one left behind looked for. Listing
        # first cost every job a request (~13 ms) that finds nothing but after a worker died
        try:
            container = create_container(client, spec, image, policy, flow_run_id, secret_values, worker, pool)
            break
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            taken = exc
        if existing := find_job_containers(client, flow_run_id):
            run = ContainerRun(client, existing[0], capture)
            run.adopt()
            elapsed = run.elapsed()
            remaining = max(spec.timeout - elapsed, 0.001) if spec.timeout else None
            return run, remaining, time.time() - elapsed, True
        # the name was taken by a container being removed meanwhile: create again
    if container is None:  # taken each time, and each time by no container of this run: the engine's word
        raise taken
    run = ContainerRun(client, container, capture)
    try:
        run.start(inputs)
    except BaseException:
        run.remove()
        raise
    return run, spec.timeout, time.time(), False


def list_containers(client: docker.DockerClient, label: str | list[str]) -> list[Container]:
    """Containers with these labels. docker-py inspects each listed container, so one removed
    meanwhile (e.g. by its finishing job) raises NotFound: then the list is taken again."""
    for _ in range(5):
        try:
            return client.containers.list(all=True, filters={"label": label})
        except docker.errors.NotFound:
            continue
    return client.containers.list(all=True, filters={"label": label})


def find_job_containers(client: docker.DockerClient, flow_run_id: str | None = None) -> list[Container]:
    label = f"{LABEL_FLOW_RUN}={flow_run_id}" if flow_run_id else LABEL_JOB
    return client.containers.list(all=True, filters={"label": label})
