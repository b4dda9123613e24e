#!/usr/bin/env bash
# Host set-up for SwarmSync, idempotent: what `make demo` and `make test` need on this machine.
#
#   bash infra/host-setup.sh demo   # Docker engine, busybox-static (the offline demo image), python3-venv
#   bash infra/host-setup.sh test   # the same, plus PostgreSQL, Redis (with a password), chromium,
#                                   # openssh-server (the SFTP tests start their own sshd) and haproxy
#                                   # (installed only; swarmsync up --ha and tests/multihost start it)
#                                   # and prometheus (installed only; tests/integration/test_metrics.py
#                                   # starts its own)
#
# As root on Debian/Ubuntu it installs (apt-get, only what is missing) and starts (only what is
# not running) each part. Otherwise it says exactly what is missing and the one command that
# sets it up, and exits 1. Every step is skipped when done, so a second run only checks.
# It reports what it started and where its log is, and a port taken by something else.
set -euo pipefail

MODE=${1:-test}
case "$MODE" in demo|test) ;; *) echo "usage: bash infra/host-setup.sh [demo|test]" >&2; exit 2 ;; esac

# (the SWARMSYNC_SETUP_* overrides exist for tests/integration/test_host_setup.py only)
ETC=${SWARMSYNC_SETUP_ETC:-/etc/swarmsync}       # the Redis password and config (root only)
REDIS_PASS_FILE=$ETC/redis.pass
REDIS_CONF=$ETC/redis.conf
LOGS=${SWARMSYNC_SETUP_LOGS:-/var/log/swarmsync}  # logs of the daemons this script starts
PG_PORT=5432
REDIS_PORT=${SWARMSYNC_SETUP_REDIS_PORT:-6379}
REDIS_PIDFILE=/run/swarmsync-redis-$REDIS_PORT.pid
FIX="sudo bash infra/host-setup.sh $MODE"

say() { echo "host-setup: $*"; }
die() { echo "host-setup: $*" >&2; exit 1; }
started=()                               # what this run installed or started, for the summary
finish() {
  say "ready for make $MODE: $1"
  if [ ${#started[@]} -gt 0 ]; then
    for what in "${started[@]}"; do say "  this run: $what"; done
  else
    say "nothing to do: everything was ready"
  fi
  exit 0
}
if [ "$(id -u)" = 0 ]; then root=1; else root=0; fi
if command -v apt-get >/dev/null 2>&1; then apt=1; else apt=0; fi

# `port_listens PORT`: something accepts TCP connections on 127.0.0.1:PORT
port_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# `who_listens PORT`: the process listening there, as far as ss can tell
who_listens() {
  local who=""
  command -v ss >/dev/null 2>&1 && who=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -1 \
    | sed -E 's/users:\(\("([^"]+)",pid=([0-9]+).*/\1 (pid \2)/')
  echo "${who:-an unknown process (ss -ltnp shows it as root)}"
}
# `cannot WHAT`: a non-root user (or a non-Debian host) cannot fix WHAT here: say how, stop
cannot() {
  if [ "$apt" = 1 ]; then die "$1. Set it up with: $FIX"; fi
  die "$1. This script installs with apt-get (Debian/Ubuntu); install and start it yourself."
}
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# ---------------------------------------------------------------------------- packages
need=()
why=()
want() { need+=("$1"); why+=("$1 ($2)"); }
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || want python3-venv "make's .venv"
command -v dockerd >/dev/null 2>&1 || want docker.io "the Docker engine"
[ -x /bin/busybox ] || want busybox-static "the offline image swarmsync/busybox:local"
if [ "$MODE" = test ]; then
  { command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } \
    || want postgresql "PostgreSQL"
  command -v redis-server >/dev/null 2>&1 || want redis-server "Redis"
  [ -x /usr/bin/chromium ] || want chromium "the dashboard's browser test"
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] \
    || want haproxy "the load balancer of Prefect's HA shape (tests/multihost)"
  command -v nsenter >/dev/null 2>&1 || want util-linux "nsenter/unshare for infra/hosts.py"
  command -v ip >/dev/null 2>&1 || want iproute2 "network namespaces for infra/hosts.py"
  command -v ssh-keygen >/dev/null 2>&1 && command -v ssh-agent >/dev/null 2>&1 \
    || want openssh-client "ssh-keygen and ssh-agent for the key-login tests"
  [ -x /usr/sbin/sshd ] || want openssh-server "the SFTP archive-store tests (they start their own sshd)"
  [ -x /usr/bin/prometheus ] || want prometheus "the metrics test (it starts its own Prometheus)"
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$root" = 1 ] && [ "$apt" = 1 ]; then
    say "installing ${why[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
    started+=("installed ${need[*]}")
  elif [ "$apt" = 1 ]; then
    die "missing: ${why[*]}. Install and start them with: $FIX"
  else
    die "missing: ${why[*]} (Debian package names). This script installs with apt-get (Debian/Ubuntu); install them with your system's package manager, then run it again."
  fi
fi

# ---------------------------------------------------------------------------- Docker engine
if docker info >/dev/null 2>&1; then
  say "docker: engine answers"
else
  err=$(docker info 2>&1 | grep -i -m1 -E "permission denied|cannot connect|error" || true)
  if [ "$root" = 0 ]; then
    case "$err" in
      *"permission denied"*) die "docker: the engine runs but $(id -un) may not use it. Fix: sudo usermod -aG docker $(id -un) (then log in again)" ;;
      *) cannot "docker: no Docker engine answers (${err:-docker info failed})" ;;
    esac
  fi
  mkdir -p "$LOGS"
  # the machine's engine only (its pidfile): the dockerds of tests/multihost's hosts do not count
  engine_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ -n "$engine_pid" ] && kill -0 "$engine_pid" 2>/dev/null && [ "$(cat /proc/"$engine_pid"/comm 2>/dev/null)" = dockerd ]; then
    say "docker: dockerd (pid $engine_pid) is starting; waiting for it"
  elif [ -d /run/systemd/system ]; then
    systemctl start docker
    started+=("dockerd (systemd unit docker; log: journalctl -u docker)")
  else
    nohup dockerd >> "$LOGS/dockerd.log" 2>&1 &
    started+=("dockerd (pid $!, log $LOGS/dockerd.log)")
  fi
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "docker: dockerd did not answer within 60 s; see $LOGS/dockerd.log"
  say "docker: started"
fi

[ "$MODE" = test ] || finish "docker, busybox-static"

# ---------------------------------------------------------------------------- PostgreSQL
pgver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
if pg_ready; then
  say "postgresql: answers on 127.0.0.1:$PG_PORT"
else
  [ "$root" = 1 ] || cannot "postgresql: nothing answers on 127.0.0.1:$PG_PORT"
  cluster=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1 "/" $2 "/" $4 "/" $7; exit}')
  if [[ "$cluster" != */online/* ]] && port_listens "$PG_PORT"; then
    die "postgresql: port $PG_PORT is taken by $(who_listens "$PG_PORT"), which is not a PostgreSQL server. Stop it, or point the tests elsewhere with SWARMSYNC_TEST_PG"
  fi
  if [ -z "$cluster" ]; then
    pg_createcluster "$pgver" main --port "$PG_PORT" >/dev/null
    cluster=$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p {print $1 "/" $2 "/" $4 "/" $7; exit}')
  fi
  IFS=/ read -r ver name status log <<<"$cluster"
  if [ "$status" = online ]; then
    say "postgresql: cluster $ver/$name is starting; waiting for it"
  else
    pg_ctlcluster "$ver" "$name" start
    started+=("PostgreSQL $ver/$name on 127.0.0.1:$PG_PORT (log $log)")
  fi
  for _ in $(seq 1 60); do pg_ready && break; sleep 0.5; done
  pg_ready || die "postgresql: cluster $ver/$name did not answer within 30 s; see $log"
  say "postgresql: cluster $ver/$name answers"
fi
if [ "$root" = 1 ]; then
  # the tests' role: password login on loopback, may create databases (one per test session),
  # nothing more. An older set-up made it a superuser: take that away.
  role=$(as_postgres psql -tAc "SELECT concat(rolsuper::int, rolcreatedb::int, rolcreaterole::int,
                               rolreplication::int, rolbypassrls::int) FROM pg_roles WHERE rolname='swarmsync'")
  case "$role" in
    "") as_postgres psql -qc "CREATE ROLE swarmsync LOGIN CREATEDB PASSWORD 'swarmsync'"
        started+=("PostgreSQL role swarmsync (LOGIN CREATEDB)") ;;
    01000) ;;  # rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
    *) as_postgres psql -qc "ALTER ROLE swarmsync LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
       started+=("PostgreSQL role swarmsync made LOGIN CREATEDB only (was $role: super/createdb/createrole/replication/bypassrls)") ;;
  esac
  as_postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname='swarmsync'" | grep -q 1 || {
    as_postgres createdb -O swarmsync swarmsync; started+=("PostgreSQL database swarmsync"); }
  say "postgresql: role swarmsync (LOGIN CREATEDB, not a superuser) on 127.0.0.1:$PG_PORT"
fi

# ---------------------------------------------------------------------------- Redis
# A password generated once into $REDIS_PASS_FILE (mode 0600; owned by the user who ran sudo):
# the tests and the benchmark read it from there (tests/services.py). There is no password-less Redis.
if [ "$root" = 1 ] && [ ! -s "$REDIS_PASS_FILE" ]; then
  install -d -m 0755 "$ETC"
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$REDIS_PASS_FILE")
  started+=("Redis password in $REDIS_PASS_FILE")
fi
# the user who ran `sudo make test` runs the tests: they read it (nobody else)
if [ "$root" = 1 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then chown "$SUDO_USER" "$REDIS_PASS_FILE"; fi
[ -r "$REDIS_PASS_FILE" ] || cannot "redis: no readable password file $REDIS_PASS_FILE"
pass=$(cat "$REDIS_PASS_FILE")
# (redis-cli goes on after a failed AUTH, so a server without a password answers PONG to it too)
redis_authed() { REDISCLI_AUTH="$pass" timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
redis_open() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
redis_noauth() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1 | grep -q -E "NOAUTH|WRONGPASS"; }
redis_ok() { redis_noauth && redis_authed; }  # needs a password, and it is ours
if [ "$root" = 1 ]; then  # what the next start of "our" Redis uses
  umask_was=$(umask); umask 077
  cat > "$REDIS_CONF.new" <<EOF
# written by infra/host-setup.sh: SwarmSync's test Redis (loopback, password, nothing saved to disk)
bind 127.0.0.1
port $REDIS_PORT
requirepass $pass
protected-mode yes
daemonize yes
pidfile $REDIS_PIDFILE
logfile $LOGS/redis.log
dir /tmp
save ""
appendonly no
EOF
  umask "$umask_was"
  if cmp -s "$REDIS_CONF.new" "$REDIS_CONF"; then rm "$REDIS_CONF.new"; else mv "$REDIS_CONF.new" "$REDIS_CONF"; fi
fi
if redis_ok; then
  say "redis: answers on 127.0.0.1:$REDIS_PORT with the password in $REDIS_PASS_FILE"
elif redis_open; then
  # a Redis without a password (e.g. Debian's redis-server service, or one an older set-up
  # started): give it the password now, without a restart, and keep it for its next start
  [ "$root" = 1 ] || cannot "redis: the server on 127.0.0.1:$REDIS_PORT answers without a password"
  pid=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server | awk -F: '/^process_id:/ {print $2}' | tr -d '\r')
  conf=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server | awk -F: '/^config_file:/ {print $2}' | tr -d '\r')
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set requirepass "$pass" >/dev/null
  redis_ok || die "redis: could not set a password on the server on 127.0.0.1:$REDIS_PORT (pid $pid)"
  if [ -n "$conf" ] && REDISCLI_AUTH="$pass" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config rewrite 2>/dev/null | grep -q OK; then
    kept="kept in its config $conf"
  else
    kept="it has no config file: it keeps the password until it stops, and this script starts the next one from $REDIS_CONF"
  fi
  started+=("password on the running Redis (pid $pid; $kept)")
  say "redis: the server on 127.0.0.1:$REDIS_PORT (pid $pid) had no password; now it needs the one in $REDIS_PASS_FILE ($kept)"
elif redis_noauth; then
  die "redis: the server on 127.0.0.1:$REDIS_PORT needs a password that is not the one in $REDIS_PASS_FILE. Give it that password, or point the tests elsewhere with SWARMSYNC_TEST_REDIS"
elif port_listens "$REDIS_PORT"; then
  die "redis: port $REDIS_PORT is taken by $(who_listens "$REDIS_PORT"), which does not answer as Redis. Stop it, or point the tests elsewhere with SWARMSYNC_TEST_REDIS"
else
  [ "$root" = 1 ] || cannot "redis: nothing answers on 127.0.0.1:$REDIS_PORT"
  if [ -s "$REDIS_PIDFILE" ] && kill -0 "$(cat "$REDIS_PIDFILE")" 2>/dev/null; then
    say "redis: redis-server (pid $(cat "$REDIS_PIDFILE")) is starting; waiting for it"
  else
    mkdir -p "$LOGS"
    redis-server "$REDIS_CONF" >/dev/null
    launched=1
  fi
  for _ in $(seq 1 40); do redis_ok && break; sleep 0.25; done
  redis_ok || die "redis: did not answer within 10 s; see $LOGS/redis.log"
  [ -z "${launched:-}" ] || started+=("Redis on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PIDFILE"), log $LOGS/redis.log)")
  say "redis: started with the password in $REDIS_PASS_FILE"
fi

finish "docker, busybox-static, postgresql, redis, chromium, haproxy, prometheus"
