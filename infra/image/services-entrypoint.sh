#!/bin/bash
# services-entrypoint postgres|redis|haproxy|prometheus|redis-cli|healthcheck: Debian's servers for a SwarmSync
# compose stack.
#   postgres: PGDATA=/var/lib/postgresql/data (a volume). On first start: initdb with the superuser
#             `postgres` and POSTGRES_PASSWORD, scram-sha-256 for every network client, then the role
#             POSTGRES_USER (same password, LOGIN CREATEDB) owning each database of POSTGRES_DATABASES.
#   redis:    append-only persistence in /data (a volume), password REDIS_PASSWORD (required).
#   haproxy:  /usr/local/etc/haproxy/haproxy.cfg (mounted).
#   prometheus: /etc/prometheus/prometheus.yml (mounted), its data in /prometheus (a volume); runs as uid
#             10001, the owner of the stack's secret files (its scrape token is one: metrics_token).
# Each secret may come from a file instead: POSTGRES_PASSWORD_FILE, REDIS_PASSWORD_FILE.
# The servers run as their Debian users (postgres, redis, haproxy), never as root.
set -euo pipefail
ROLE_FILE=/tmp/services-role
from_file() { local n=$1 f="${1}_FILE"; if [ -z "${!n:-}" ] && [ -n "${!f:-}" ]; then export "$n=$(cat "${!f}")"; fi; }
from_file POSTGRES_PASSWORD
from_file REDIS_PASSWORD
cmd=${1:-help}; shift || true
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=${PGDATA:-/var/lib/postgresql/data}

case "$cmd" in
postgres)
  echo postgres > "$ROLE_FILE"
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "services: POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required" >&2; exit 1; }
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres /run/postgresql
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp); chown postgres "$pw"; printf '%s\n' "$POSTGRES_PASSWORD" > "$pw"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres --pwfile="$pw" --auth-local=peer \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pw"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # the set-up server listens on a socket of its own: nothing (the health check, a restore waiting
    # for it) takes it for the real one, which then replaces it
    init=$(mktemp -d); chown postgres "$init"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=$init" \
      -w start >/dev/null
    user=${POSTGRES_USER:-swarmsync}
    runuser -u postgres -- psql -h "$init" -v ON_ERROR_STOP=1 -q -v user="$user" -v pw="$POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE :"user" LOGIN CREATEDB PASSWORD :'pw';
SQL
    for db in ${POSTGRES_DATABASES:-swarmsync prefect}; do
      runuser -u postgres -- createdb -h "$init" -O "$user" "$db"
    done
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    rm -rf "$init"
    echo "services: PostgreSQL initialised: role $user, databases ${POSTGRES_DATABASES:-swarmsync prefect}"
  fi
  exec runuser -u postgres -- "$PGBIN/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
  ;;
redis)
  echo redis > "$ROLE_FILE"
  [ -n "${REDIS_PASSWORD:-}" ] || { echo "services: REDIS_PASSWORD (or REDIS_PASSWORD_FILE) is required" >&2; exit 1; }
  install -d -o redis -g redis -m 0750 /data
  conf=/run/redis.conf
  umask 077
  cat > "$conf" <<CONF
bind 0.0.0.0
port 6379
protected-mode no
requirepass $REDIS_PASSWORD
dir /data
appendonly yes
save 300 10
CONF
  chown redis "$conf"
  exec runuser -u redis -- redis-server "$conf" "$@"
  ;;
haproxy)
  echo haproxy > "$ROLE_FILE"
  exec haproxy -W -db -f "${HAPROXY_CONFIG:-/usr/local/etc/haproxy/haproxy.cfg}" "$@"
  ;;
prometheus)
  echo prometheus > "$ROLE_FILE"
  install -d -o 10001 -g 10001 -m 0750 /prometheus
  exec setpriv --reuid=10001 --regid=10001 --clear-groups prometheus \
    --config.file="${PROMETHEUS_CONFIG:-/etc/prometheus/prometheus.yml}" --storage.tsdb.path=/prometheus \
    --web.listen-address=0.0.0.0:9090 "$@"
  ;;
redis-cli)
  # redis-cli with the password from REDIS_PASSWORD(_FILE), e.g. `docker-compose exec -T redis
  # services-entrypoint redis-cli save` (the password never appears on a command line)
  REDISCLI_AUTH="${REDIS_PASSWORD:-}" exec redis-cli "$@"
  ;;
healthcheck)
  role=${1:-$(cat "$ROLE_FILE" 2>/dev/null || true)}
  case "$role" in
    postgres) exec runuser -u postgres -- "$PGBIN/pg_isready" -q -h /run/postgresql ;;
    redis) REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG ;;
    haproxy) exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/${HAPROXY_HEALTH_PORT:-4200}' ;;
    prometheus) exec bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090' ;;
    *) exit 0 ;;
  esac
  ;;
*)
  exec "$cmd" "$@"
  ;;
esac
