#!/usr/bin/env bash
# Prepare this folder for `docker-compose up -d` (run as root, or as a user who may chown; idempotent):
#   - .env from .env.example when there is none, with SWARMSYNC_IMAGE_TAG (the tag infra/image/build.sh
#     gives this checkout's images) and DOCKER_GID (the group of the Docker socket) filled in;
#   - the secret files that are missing in SWARMSYNC_SECRETS_DIR (default ./secrets): random
#     passwords (hex: they go into URLs) and the Prefect auth string `admin:<random>`, mode 0400,
#     owned by uid 10001 (the SwarmSync containers' user; PostgreSQL and Redis read them as root).
# An existing .env or secret file is never changed. Prints what it did.
#   bash setup.sh              # the server host (and a worker on it)
#   bash setup.sh --worker     # a worker host: .env with COMPOSE_FILE=worker.yaml and its credentials
#                              # folder ./worker-credentials (its worker token and Core's CA go there)
set -euo pipefail
cd "$(dirname "$0")"
worker=0
[ "${1:-}" = --worker ] && worker=1

if [ ! -f .env ]; then
  tag=${SWARMSYNC_IMAGE_TAG:-$(bash ../image/build.sh --print-tag)}
  gid=$(stat -c %g "${DOCKER_SOCKET:-/var/run/docker.sock}" 2>/dev/null || echo "")
  (umask 077 && sed -e "s|^SWARMSYNC_IMAGE_TAG=.*|SWARMSYNC_IMAGE_TAG=$tag|" -e "s|^DOCKER_GID=.*|DOCKER_GID=$gid|" \
    .env.example > .env)
  if [ "$worker" = 1 ]; then
    sed -i -e 's|^COMPOSE_FILE=.*|COMPOSE_FILE=worker.yaml|' \
      -e 's|^SWARMSYNC_WORKER_CREDENTIALS=.*|SWARMSYNC_WORKER_CREDENTIALS=./worker-credentials|' .env
  fi
  echo "setup: wrote .env (SWARMSYNC_IMAGE_TAG=$tag, DOCKER_GID=${gid:-unknown: set it}); review it: \$EDITOR .env"
else
  echo "setup: .env exists, left as it is"
fi

dir=$(sed -n 's/^SWARMSYNC_SECRETS_DIR=//p' .env | tail -1)
dir=${dir:-./secrets}
install -d -m 0700 "$dir"
new() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
names="postgres_password redis_password prefect_auth_string admin_password"
[ "$worker" = 1 ] && names=""
for name in $names; do
  file=$dir/$name
  if [ -s "$file" ]; then continue; fi
  if [ "$name" = prefect_auth_string ]; then value="admin:$(new)"; else value=$(new); fi
  (umask 077 && printf '%s\n' "$value" > "$file")
  echo "setup: made $file"
done
# Prometheus' scrape token (profile `monitoring`): empty until an admin writes a metrics:read token into it
if [ "$worker" = 0 ] && [ ! -e "$dir/metrics_token" ]; then
  (umask 077 && : > "$dir/metrics_token")
  echo "setup: made $dir/metrics_token (empty: for the monitoring profile, docs/alerts-and-monitoring.md#metrics)"
fi
for file in "$dir"/*; do
  [ -f "$file" ] || continue
  chown 10001:10001 "$file" 2>/dev/null || echo "setup: could not chown $file to 10001 (run as root)" >&2
  chmod 0400 "$file"
done
if [ "$worker" = 1 ]; then
  install -d -m 0700 ./worker-credentials
  chown 10001:10001 ./worker-credentials 2>/dev/null || true
  [ -s ./worker-credentials/token ] || echo "setup: put this host's worker token (on the server: swarmsync worker token create $(hostname)) into ./worker-credentials/token"
  [ -s ./worker-credentials/ca.pem ] || echo "setup: put Core's CA (on the server: swarmsync tls show) into ./worker-credentials/ca.pem"
  grep -q '^SWARMSYNC_SERVER=.\+' .env || echo "setup: set SWARMSYNC_SERVER=https://CORE:4280 in .env"
fi
echo "setup: secrets in $dir (the first admin's password: $dir/admin_password)"
