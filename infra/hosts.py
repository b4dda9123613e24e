"""Real hosts on one machine, for the multi-host tests, bench/scale.py and by hand.

    python infra/hosts.py up [--workers 3] [--labels 'ss-w2=gpu,region=eu'] [--ha 2] [--limit 20]
    python infra/hosts.py status | down
    python infra/hosts.py lose HOST          # kill everything of a worker host, delete its namespace
    python infra/hosts.py add HOST [--labels gpu]   # (re)start a worker host
    python infra/hosts.py rejoin HOST [--labels gpu]  # a new worker token and worker (its dockerd kept)
    python infra/hosts.py run HOST -- CMD...  # a command on a host (its netns, engine, env)

Every host is a network namespace `ss-NAME` with its own address on the bridge `ss-br0`
(10.77.0.0/24; the machine itself is 10.77.0.1). No namespace has a default route: traffic
goes only between these namespaces (and each one's loopback).

- the server host `ss-server` (10.77.0.2): its own PostgreSQL cluster (initdb under its
  folder), Redis, an sshd serving SFTP (the archive store, chrooted) and `swarmsync up` in
  team mode: Prefect (one process, or `--ha N` API processes behind HAProxy plus a services
  process), the SwarmSync API on :4280. Admin `admin` / the password in STATE.
- each worker host `ss-wN` (10.77.0.1N): its own dockerd (data root, exec root, pidfile, socket,
  cgroup parent; no iptables, no bridge), the busybox image loaded from the machine's engine
  (docker save | load), and `swarmsync worker start --server https://10.77.0.2:4280 --token ssw_...`
  (a worker token of its own, made on the server host) with its own HOME and SWARMSYNC_HOME; its
  hostname (UTS namespace) is its name. It holds no database URL, no store key, no Prefect auth
  string: a firewall inside its namespace (`firewall`) lets it reach only the server's API port.

State (addresses, passwords, pids) is in $SS_HOSTS_ROOT/state.json (default /var/lib/ss-hosts).
Everything is named `ss-...`; `down` removes it all and is safe to run twice.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(os.environ.get("SS_HOSTS_ROOT", "/var/lib/ss-hosts"))
RUN = Path("/run/ss-hosts")  # exec roots and sockets: short paths (unix socket length limit)
BRIDGE = "ss-br0"
NET = "10.77.0"
SERVER = "ss-server"
SERVER_IP = f"{NET}.2"
PREFECT_PORT, API_PORT, PG_PORT, REDIS_PORT, SSH_PORT = 4200, 4280, 5432, 6379, 22
IMAGE = "swarmsync/busybox:local"
STATE = ROOT / "state.json"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "ss-hosts", "-j", "ACCEPT"]


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)


def in_ns(host: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", host, *args]


def load_state() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {}


def save_state(state: dict) -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=1))
    STATE.chmod(0o600)


def worker_ip(name: str) -> str:
    return f"{NET}.{10 + int(name.removeprefix('ss-w'))}"


# --- network ------------------------------------------------------------------------------

def bridge_up() -> None:
    if sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    # the machine's Docker sets FORWARD to DROP and bridged frames pass iptables (br_netfilter):
    # let frames between our namespaces through, nothing else
    if sh("iptables", "-C", *FORWARD_RULE, check=False).returncode != 0:
        sh("iptables", "-I", *FORWARD_RULE)


def namespace_up(host: str, ip: str) -> None:
    if host not in sh("ip", "netns", "list").stdout.split():
        sh("ip", "netns", "add", host)
    outside, inside = f"{host}-h", f"{host}-n"
    if sh("ip", "link", "show", outside, check=False).returncode != 0:
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", host)
        sh("ip", "link", "set", outside, "master", BRIDGE, "up")
        sh(*in_ns(host, "ip", "addr", "add", f"{ip}/24", "dev", inside))
    sh(*in_ns(host, "ip", "link", "set", inside, "up"))
    sh(*in_ns(host, "ip", "link", "set", "lo", "up"))


def namespace_down(host: str) -> None:
    sh("ip", "link", "del", f"{host}-h", check=False)
    sh("ip", "netns", "del", host, check=False)


# --- processes ----------------------------------------------------------------------------

def spawn(args: list[str], log: Path, env: dict[str, str] | None = None, user: str | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                user=user)
    return proc.pid


def wait(check, what: str, timeout: float = 60, log: Path | None = None, interval: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001,S110 - not ready yet
            pass
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise SystemExit(f"{what} not ready after {timeout:.0f} s\n{tail}")


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def remove_cgroups(host: str) -> None:
    """The host's Docker cgroup parent (/sys/fs/cgroup/*/HOST), emptied by the kills: removed bottom-up."""
    for base in Path("/sys/fs/cgroup").glob(f"*/{host}"):
        for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                folder.rmdir()
            except OSError:
                pass
        try:
            base.rmdir()
        except OSError:
            pass


def host_pids(host: str) -> list[int]:
    """Every process of a host: those in its network namespace (worker, dockerd, containerd,
    shims) and those in its Docker cgroup (containers, which have network namespaces of their own)."""
    pids = [int(p) for p in sh("ip", "netns", "pids", host, check=False).stdout.split()]
    for controller in ("pids", "memory", "cpu,cpuacct", "cpu"):
        base = Path("/sys/fs/cgroup") / controller / host
        if base.exists():
            for tasks in base.rglob("tasks"):
                pids += [int(p) for p in tasks.read_text().split()]
            break
    return sorted(set(pids) - {os.getpid()})


# --- server host --------------------------------------------------------------------------

def server_env(state: dict) -> dict[str, str]:
    s = state["server"]
    pg = f"{s['pg_user']}:{s['pg_password']}@{SERVER_IP}:{PG_PORT}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(ROOT / SERVER),
        "SWARMSYNC_HOME": str(ROOT / SERVER / "swarmsync"),
        "SWARMSYNC_HOST": SERVER_IP,
        "SWARMSYNC_PORT": str(PREFECT_PORT),
        "SWARMSYNC_API_PORT": str(API_PORT),
        "SWARMSYNC_PREFECT_AUTH_STRING": s["auth"],
        "SWARMSYNC_DATABASE_URL": f"postgresql+psycopg://{pg}/swarmsync",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{pg}/prefect",
        "SWARMSYNC_REDIS_URL": f"redis://:{s['redis_password']}@{SERVER_IP}:{REDIS_PORT}/0",
        "SWARMSYNC_PREFECT_REDIS_URL": f"redis://:{s['redis_password']}@{SERVER_IP}:{REDIS_PORT}/1",
        "SWARMSYNC_PREFECT_API_PROCESSES": str(state["ha"]),
        "SWARMSYNC_ADMIN_USER": "admin",
        "SWARMSYNC_ADMIN_PASSWORD": s["admin_password"],
        "SWARMSYNC_TRUSTED_PROXIES": "",
        "SWARMSYNC_PUBLIC_URL": f"https://{SERVER_IP}:{API_PORT}",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
        # Prefect's worker health (foreman): a worker silent for 3 heartbeats is OFFLINE
        "PREFECT_SERVER_SERVICES_FOREMAN_LOOP_SECONDS": "5",
        "PREFECT_SERVER_SERVICES_FOREMAN_INACTIVITY_HEARTBEAT_MULTIPLE": "3",
        "PREFECT_SERVER_SERVICES_FOREMAN_FALLBACK_HEARTBEAT_INTERVAL_SECONDS": "5",
    }
    return env


def client_env(state: dict) -> dict[str, str]:
    """What the machine itself (tests, benchmarks: outside the worker hosts' firewalls) uses to reach the
    server host as its admin would: Prefect's address and auth string, SwarmSync's database, the API."""
    e = server_env(state)
    env = {"SWARMSYNC_API_URL": f"http://{SERVER_IP}:{PREFECT_PORT}/api",
           "SWARMSYNC_PREFECT_AUTH_STRING": e["SWARMSYNC_PREFECT_AUTH_STRING"],
           "SWARMSYNC_DATABASE_URL": e["SWARMSYNC_DATABASE_URL"],
           "SWARMSYNC_URL": core_url()}
    if server_ca().exists():
        env["SWARMSYNC_CA_FILE"] = str(server_ca())
    return env


def start_postgres(state: dict) -> None:
    s, data = state["server"], ROOT / SERVER / "pg"
    log = ROOT / SERVER / "logs" / "postgres.log"
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        pwfile = ROOT / SERVER / "pg.pw"
        pwfile.write_text(s["pg_password"])
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
        sh("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data), "-U", s["pg_user"],
           "--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8")
        pwfile.unlink()
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {NET}.0/24 scram-sha-256\n")
    log.parent.mkdir(parents=True, exist_ok=True)
    state["pids"]["postgres"] = spawn(
        in_ns(SERVER, "runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D", str(data),
              "-c", f"listen_addresses={SERVER_IP},127.0.0.1",
              "-c", f"port={PG_PORT}", "-c", f"unix_socket_directories={data}", "-c", "max_connections=300",
              "-c", "fsync=off", "-c", "synchronous_commit=off"),
        log)
    import psycopg

    conninfo = (f"host={SERVER_IP} port={PG_PORT} user={s['pg_user']} password={s['pg_password']} "
                "dbname=postgres")
    wait(lambda: psycopg.connect(conninfo, connect_timeout=2).close() is None, "PostgreSQL", 60, log)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for db in ("swarmsync", "prefect"):
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (db,)).fetchone():
                conn.execute(f'CREATE DATABASE "{db}"')


def start_redis(state: dict) -> None:
    log = ROOT / SERVER / "logs" / "redis.log"
    state["pids"]["redis"] = spawn(
        in_ns(SERVER, "redis-server", "--bind", SERVER_IP, "127.0.0.1", "--port", str(REDIS_PORT),
              "--requirepass", state["server"]["redis_password"], "--save", "", "--appendonly", "no",
              "--dir", str(ROOT / SERVER), "--protected-mode", "no"), log)
    import redis

    client = redis.Redis(host=SERVER_IP, port=REDIS_PORT, password=state["server"]["redis_password"])
    wait(client.ping, "Redis", 30, log)


def start_sshd(state: dict) -> None:
    """Debian's sshd as the SFTP archive store: key login only, SFTP only, chrooted to
    sftp-root (the archive is sftp-root/archive)."""
    home = ROOT / SERVER
    keys = home / "ssh"
    keys.mkdir(parents=True, exist_ok=True)
    if not (keys / "host_ed25519").exists():
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host_ed25519"))
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ss-hosts archive", "-f", str(keys / "client"))
        shutil.copy(keys / "client.pub", keys / "authorized_keys")
    chroot = home / "sftp-root"
    (chroot / "archive").mkdir(parents=True, exist_ok=True)
    for path in (home, chroot):
        path.chmod(0o755)
    (keys / "sshd_config").write_text(f"""Port {SSH_PORT}
ListenAddress {SERVER_IP}
HostKey {keys / 'host_ed25519'}
PidFile {home / 'sshd.pid'}
AuthorizedKeysFile {keys / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers root
Subsystem sftp internal-sftp
ForceCommand internal-sftp
ChrootDirectory {chroot}
AllowTcpForwarding no
X11Forwarding no
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    log = home / "logs" / "sshd.log"
    state["pids"]["sshd"] = spawn(in_ns(SERVER, "/usr/sbin/sshd", "-D", "-e", "-f", str(keys / "sshd_config")), log)
    import socket

    wait(lambda: socket.create_connection((SERVER_IP, SSH_PORT), timeout=1).close() is None, "sshd", 20, log)


def give_ssh_key(home: Path) -> None:
    """A host's copy of the archive store's login key (~/.ssh/id_ed25519, found by paramiko)."""
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(ROOT / SERVER / "ssh" / "client", ssh / "id_ed25519")
    (ssh / "id_ed25519").chmod(0o600)
    # the store's host key, pinned (the block's `known_hosts: ~/.ssh/known_hosts`)
    host_key = (ROOT / SERVER / "ssh" / "host_ed25519.pub").read_text().split()[:2]
    name = SERVER_IP if SSH_PORT == 22 else f"[{SERVER_IP}]:{SSH_PORT}"
    (ssh / "known_hosts").write_text(f"{name} {' '.join(host_key)}\n")


def start_server_stack(state: dict) -> None:
    env = server_env(state)
    give_ssh_key(ROOT / SERVER)
    log = ROOT / SERVER / "logs" / "up.log"
    log.write_bytes(b"") if log.exists() else None
    state["pids"]["swarmsync-up"] = spawn(
        in_ns(SERVER, sys.executable, "-m", "swarmsync.cli.main", "up", "--no-worker", "--no-dashboard"), log, env)
    wait(lambda: b"SwarmSync is up" in log.read_bytes(), "swarmsync up on the server host", 600, log)


def configure_archive(state: dict) -> None:
    """The pool's archive: a RemoteFileSystem block on the server host's SFTP store (each use
    takes an SFTP session of its own from swarmsync.archive's pool: concurrent requests on one
    paramiko session hung in an early run)."""
    code = f"""
from prefect.filesystems import RemoteFileSystem
from swarmsync.connection import prefect_api
from swarmsync.deployments.pools import create_pool
with prefect_api():
    store = RemoteFileSystem(basepath="sftp://{SERVER_IP}/archive",
                             settings={{"host": "{SERVER_IP}", "username": "root",
                                       "known_hosts": "~/.ssh/known_hosts"}})
    store.save("hosts-archive", overwrite=True)
create_pool("swarmsync", archive_block="remote-file-system/hosts-archive")
"""
    sh(*in_ns(SERVER, sys.executable, "-c", code), env={**os.environ, **server_env(state)})


# --- worker hosts -------------------------------------------------------------------------

def core_url() -> str:
    """The server host's API as worker hosts reach it (https once `up` made its CA)."""
    scheme = "https" if server_ca().exists() else "http"
    return f"{scheme}://{SERVER_IP}:{API_PORT}"


def server_ca() -> Path:
    return ROOT / SERVER / "swarmsync" / "tls" / "ca.pem"


def worker_env(state: dict, name: str) -> dict[str, str]:
    """A worker host's whole set-up: Core's URL, its own token, Core's CA; nothing else of the server's.
    In the `direct` mode (for bench/scale.py's comparison) the old shape instead: the server's Prefect
    address and auth string, its database and the store's SSH key."""
    home = ROOT / name
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SWARMSYNC_HOME": str(home / "swarmsync"),
        "PREFECT_HOME": str(home / "prefect"),
        "DOCKER_HOST": f"unix://{RUN / name / 'docker.sock'}",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        "SWARMSYNC_LOST_WORKER_SECONDS": os.environ.get("SWARMSYNC_LOST_WORKER_SECONDS", "90"),
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    }
    if state.get("worker_mode") == "direct":
        give_ssh_key(home)
        return {**env, **client_env(state)}
    env.update({"SWARMSYNC_SERVER": core_url(), "SWARMSYNC_WORKER_TOKEN": state["workers"][name]["token"]})
    if server_ca().exists():
        ca = home / "core-ca.pem"
        shutil.copy(server_ca(), ca)
        env["SWARMSYNC_CA_FILE"] = str(ca)
    return env


def worker_token(state: dict, name: str, pool: str = "swarmsync") -> str:
    """A new worker token for the host, made on the server host (an earlier one of that name is revoked)."""
    code = f"""
import sys
from swarmsync.auth import worker_tokens
try:
    worker_tokens.revoke("hosts.py", "{name}")
    from swarmsync.db import WorkerToken, session_scope
    with session_scope() as session:
        session.query(WorkerToken).filter(WorkerToken.name == "{name}").delete()
except worker_tokens.WorkerTokenNotFound:
    pass
from swarmsync.connection import prefect_api
from swarmsync.deployments.pools import create_pool
if "{pool}" != "swarmsync":
    with prefect_api():
        create_pool("{pool}")
print(worker_tokens.create("hosts.py", "{name}", "{pool}").token)
"""
    return sh(*in_ns(SERVER, sys.executable, "-c", code), env={**os.environ, **server_env(state)}).stdout.split()[-1]


def firewall(name: str) -> None:
    """Inside the host's namespace: out only to the server's API port (and loopback), nothing in but answers."""
    rules = [["-F", "INPUT"], ["-F", "OUTPUT"],
             ["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"],
             ["-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
             ["-A", "OUTPUT", "-p", "tcp", "-d", SERVER_IP, "--dport", str(API_PORT), "-j", "ACCEPT"],
             ["-A", "OUTPUT", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
             ["-A", "OUTPUT", "-j", "REJECT"],
             ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
             ["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
             ["-A", "INPUT", "-j", "DROP"]]
    for rule in rules:
        sh(*in_ns(name, "iptables", *rule))


def start_dockerd(name: str) -> int:
    home, run = ROOT / name, RUN / name
    run.mkdir(parents=True, exist_ok=True)
    log = home / "logs" / "dockerd.log"
    pid = spawn(["nsenter", f"--net=/var/run/netns/{name}", "dockerd",
                 "--data-root", str(home / "docker"), "--exec-root", str(run / "exec"),
                 "--pidfile", str(run / "dockerd.pid"), "-H", f"unix://{run / 'docker.sock'}",
                 "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
                 "--bridge=none", "--cgroup-parent", f"/{name}", "--log-level", "warn"], log)
    import docker

    wait(lambda: docker.DockerClient(base_url=f"unix://{run / 'docker.sock'}").ping(), f"dockerd of {name}", 60, log)
    return pid


def load_image(name: str) -> None:
    engine = f"unix://{RUN / name / 'docker.sock'}"
    if sh("docker", "-H", engine, "image", "inspect", IMAGE, check=False).returncode == 0:
        return
    save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
    subprocess.run(["docker", "-H", engine, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
    save.wait()


def start_worker(state: dict, name: str, labels: list[str], limit: int) -> int:
    from swarmsync.routing import label_options

    home = ROOT / name
    log = home / "logs" / "worker.log"
    pool = ["--pool", "swarmsync"] if state.get("worker_mode") == "direct" else []  # a token names its pool
    inner = [sys.executable, "-m", "swarmsync.cli.main", "worker", "start", *pool,
             "--name", name, "--limit", str(limit), *label_options(labels)]
    # its own UTS namespace: the worker's hostname (in run ids, telemetry) is the host's name
    args = in_ns(name, "unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "worker", *inner)
    return spawn(args, log, worker_env(state, name))


def add_worker(state: dict, name: str, labels: list[str], limit: int, pool: str = "swarmsync") -> None:
    namespace_up(name, worker_ip(name))
    if state.get("worker_mode") != "direct":
        firewall(name)
    (ROOT / name / "logs").mkdir(parents=True, exist_ok=True)
    dockerd = start_dockerd(name)
    load_image(name)
    direct = state.get("worker_mode") == "direct"
    state["workers"][name] = {"ip": worker_ip(name), "labels": labels, "limit": limit, "dockerd": dockerd,
                              "pool": pool, "token": None if direct else worker_token(state, name, pool)}
    save_state(state)
    state["workers"][name]["worker"] = start_worker(state, name, labels, limit)
    save_state(state)


def rejoin(state: dict, name: str, labels: list[str], limit: int) -> None:
    """The host's worker again, with a new token (after its token was revoked): its engine stays."""
    known = state["workers"][name]
    kill_pids([known["worker"]] if known.get("worker") else [])
    known["token"] = worker_token(state, name, known.get("pool", "swarmsync"))
    save_state(state)
    known["worker"] = start_worker(state, name, labels, limit)
    save_state(state)


def lose(state: dict, name: str) -> None:
    """The host is gone: every process of it killed at once (worker, dockerd, containerd, its
    containers), then its namespace deleted. Its disk (data root) stays, as a dead machine's would."""
    for _ in range(3):
        known = state["workers"].get(name, {})
        pids = host_pids(name) + [p for p in (known.get("worker"), known.get("dockerd")) if p]
        kill_pids(pids)
        time.sleep(0.3)
    for mount in sorted((m.split()[1] for m in Path("/proc/mounts").read_text().splitlines()
                         if f"/{name}/" in m.split()[1] and (str(ROOT) in m or str(RUN) in m)), reverse=True):
        sh("umount", "-l", mount, check=False)
    namespace_down(name)
    shutil.rmtree(RUN / name, ignore_errors=True)
    remove_cgroups(name)
    state["workers"].pop(name, None)
    save_state(state)


def up(workers: int, labels: dict[str, list[str]], ha: int, limit: int, worker_mode: str = "core") -> dict:
    if load_state():
        down()
    import docker

    from swarmsync.images import ensure_busybox_image

    ensure_busybox_image(docker.from_env())
    state = {"ha": ha, "worker_mode": worker_mode, "pids": {}, "workers": {}, "server": {
        "ip": SERVER_IP, "pg_user": "swarmsync", "pg_password": secrets.token_hex(12),
        "redis_password": secrets.token_hex(12), "auth": f"prefect:{secrets.token_hex(12)}",
        "admin_password": secrets.token_hex(12)}}
    ROOT.mkdir(parents=True, exist_ok=True)
    save_state(state)
    bridge_up()
    namespace_up(SERVER, SERVER_IP)
    start_postgres(state)
    start_redis(state)
    start_sshd(state)
    save_state(state)
    start_server_stack(state)
    configure_archive(state)
    save_state(state)
    for i in range(1, workers + 1):
        name = f"ss-w{i}"
        add_worker(state, name, labels.get(name, []), limit)
    wait_workers_online(state, list(state["workers"]))
    return state


def wait_workers_online(state: dict, names: list[str], timeout: float = 90, pool: str = "swarmsync") -> None:
    code = ("import anyio,sys; from swarmsync.connection import prefect_api\n"
            "from swarmsync.deployments.stack import _worker_names_online\n"
            f"with prefect_api(): print(' '.join(anyio.run(_worker_names_online, '{pool}')))")

    def online() -> bool:
        out = sh(sys.executable, "-c", code, env={**os.environ, **client_env(state)}, check=False).stdout.split()
        return set(names) <= set(out)

    wait(online, f"workers {', '.join(names)} online", timeout, interval=2)


def down() -> None:
    state = load_state()
    for name in [*sorted(state.get("workers", {})), *sorted(
            p.name for p in ROOT.glob("ss-w*") if p.is_dir())]:
        if name in sh("ip", "netns", "list").stdout.split() or (RUN / name).exists():
            lose({"workers": state.get("workers", {}), **state}, name) if state else namespace_down(name)
    kill_pids([p for p in state.get("pids", {}).values() if p], signal.SIGTERM)
    time.sleep(1)
    if SERVER in sh("ip", "netns", "list").stdout.split():
        kill_pids(host_pids(SERVER))
    kill_pids([p for p in state.get("pids", {}).values() if p])
    namespace_down(SERVER)
    for line in sh("ip", "netns", "list").stdout.splitlines():  # anything else of ours
        if line.startswith("ss-"):
            host = line.split()[0]
            kill_pids(host_pids(host))
            namespace_down(host)
    while sh("iptables", "-C", *FORWARD_RULE, check=False).returncode == 0:
        sh("iptables", "-D", *FORWARD_RULE)
    sh("ip", "link", "del", BRIDGE, check=False)
    for mount in sorted((m.split()[1] for m in Path("/proc/mounts").read_text().splitlines()
                         if m.split()[1].startswith((str(ROOT), str(RUN)))), reverse=True):
        sh("umount", "-l", mount, check=False)
    shutil.rmtree(RUN, ignore_errors=True)
    shutil.rmtree(ROOT, ignore_errors=True)


def status() -> str:
    state = load_state()
    if not state:
        return "no hosts (infra/hosts.py up)"
    lines = [f"server {SERVER} {SERVER_IP}: Prefect http://{SERVER_IP}:{PREFECT_PORT}/api "
             f"({state['ha']} API process(es)), SwarmSync API http://{SERVER_IP}:{API_PORT}, "
             f"PostgreSQL :{PG_PORT}, Redis :{REDIS_PORT}, SFTP :{SSH_PORT}"]
    for name, pid in state["pids"].items():
        alive = Path(f"/proc/{pid}").exists()
        lines.append(f"  {name}: pid {pid} {'running' if alive else 'DEAD'}")
    for name, w in sorted(state["workers"].items()):
        alive = all(Path(f"/proc/{w[k]}").exists() for k in ("worker", "dockerd"))
        lines.append(f"worker {name} {w['ip']}: labels {','.join(w['labels']) or '-'} limit {w['limit']} "
                     f"{'running' if alive else 'DEAD'} (engine unix://{RUN / name / 'docker.sock'})")
    lines.append(f"state (passwords): {STATE}")
    return "\n".join(lines)


def parse_labels(text: str) -> dict[str, list[str]]:
    """'ss-w2=gpu,region=eu;ss-w3=region=us' -> {host: [labels]}"""
    out: dict[str, list[str]] = {}
    for part in filter(None, text.split(";")):
        host, _, labels = part.partition("=")
        out[host.strip()] = [x.strip() for x in labels.split(",") if x.strip()]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--workers", type=int, default=3)
    p_up.add_argument("--labels", default="", help="'ss-w2=gpu,region=eu;ss-w3=region=us'")
    p_up.add_argument("--ha", type=int, default=1, help="Prefect API processes behind HAProxy")
    p_up.add_argument("--limit", type=int, default=20, help="jobs at once per worker host")
    p_up.add_argument("--worker-mode", choices=("core", "direct"), default="core",
                      help="core: worker hosts hold a worker token and reach only Core's API (firewalled); "
                           "direct: the old shape, for comparison (Prefect, database and store reached directly)")
    sub.add_parser("down")
    sub.add_parser("status")
    p_env = sub.add_parser("env", help="print the environment that reaches the server host")
    p_env.add_argument("--json", action="store_true")
    p_lose = sub.add_parser("lose")
    p_lose.add_argument("host")
    p_add = sub.add_parser("add")
    p_add.add_argument("host")
    p_add.add_argument("--labels", default="")
    p_add.add_argument("--limit", type=int, default=20)
    p_add.add_argument("--pool", default="swarmsync", help="the work pool its token serves (made if missing)")
    p_rejoin = sub.add_parser("rejoin")
    p_rejoin.add_argument("host")
    p_rejoin.add_argument("--labels", default="")
    p_rejoin.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    if args.command != "status" and os.geteuid() != 0:
        raise SystemExit("infra/hosts.py needs root (namespaces, dockerd)")
    if args.command == "up":
        try:
            up(args.workers, parse_labels(args.labels), args.ha, args.limit, args.worker_mode)
        except BaseException:
            kept = ROOT.parent / "ss-hosts-failed-logs"
            shutil.rmtree(kept, ignore_errors=True)
            for log in [*ROOT.glob("*/logs/*.log"), *ROOT.glob("*/swarmsync/logs/*.log")]:
                (kept / log.relative_to(ROOT).parent).mkdir(parents=True, exist_ok=True)
                shutil.copy(log, kept / log.relative_to(ROOT))
            print(f"up failed; logs kept in {kept}; tearing down", file=sys.stderr)
            if not os.environ.get("SS_HOSTS_KEEP_ON_FAILURE"):
                down()
            raise
        print(status())
    elif args.command == "down":
        down()
        print("hosts removed")
    elif args.command == "status":
        print(status())
    elif args.command == "env":
        env = client_env(load_state())
        if args.json:
            print(json.dumps(env))
        for key, value in env.items() if not args.json else ():
            print(f"export {key}='{value}'")
    elif args.command == "lose":
        lose(load_state(), args.host)
    elif args.command == "add":
        state = load_state()
        labels = [x for x in args.labels.split(",") if x]
        add_worker(state, args.host, labels, args.limit, args.pool)
        wait_workers_online(state, [args.host], pool=args.pool)
    elif args.command == "rejoin":
        state = load_state()
        rejoin(state, args.host, [x for x in args.labels.split(",") if x], args.limit)
        wait_workers_online(state, [args.host])


if __name__ == "__main__":
    main()
