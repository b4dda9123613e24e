#!/usr/bin/env bash
# Installs and starts, idempotently, what SwarmSync's tests need on a Debian host:
# a Docker engine (docker.io), busybox-static (for the offline test image),
# PostgreSQL, Redis and Debian's chromium (headless, for the dashboard's browser test). Safe to run again: every step is skipped when done.
set -euo pipefail

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)  # the dashboard's browser test (Playwright drives it)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "host-setup: installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Docker engine
if ! docker info >/dev/null 2>&1; then
  echo "host-setup: starting dockerd"
  nohup dockerd > /var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi

# PostgreSQL
pgver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
  echo "host-setup: starting PostgreSQL $pgver"
  pg_lsclusters -h | grep -q "^$pgver main" || pg_createcluster "$pgver" main >/dev/null
  pg_ctlcluster "$pgver" main start
fi
# a password-authenticated role for tests (loopback TCP only)
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='swarmsync'\"" | grep -q 1 || \
  su postgres -c "psql -qc \"CREATE ROLE swarmsync LOGIN SUPERUSER PASSWORD 'swarmsync'\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='swarmsync'\"" | grep -q 1 || \
  su postgres -c "createdb -O swarmsync swarmsync"

# Redis
if ! redis-cli ping >/dev/null 2>&1; then
  echo "host-setup: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir /tmp --save "" >/dev/null
  for _ in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.25; done
fi
echo "host-setup: docker, postgresql, redis, chromium ready"
