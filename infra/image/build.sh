#!/usr/bin/env bash
# Build SwarmSync's images from this checkout, with or without a registry.
#
#   bash infra/image/build.sh            # swarmsync/swarmsync:<tag> and swarmsync/services:<tag>
#   SWARMSYNC_IMAGE_TAG=dev bash infra/image/build.sh
#   bash infra/image/build.sh --print-tag   # the tag it would use: <version>-<hash of this checkout's path>
#
# 1. Base image. When a registry answers (`docker pull python:3.11-slim-bookworm` works, or it
#    is already here) that is the base. Otherwise a Debian bookworm root filesystem is made with
#    debootstrap (python3, python3-venv from Debian) and `docker import`ed as
#    swarmsync/debian-base:bookworm-<hash of its inputs>. That image, and the root filesystem's
#    tarball under $CACHE, are reused while the inputs are unchanged (the slow step, once per machine).
# 2. Wheels. The pinned dependencies (infra/image/requirements.lock, `pip freeze` of a working
#    venv) and SwarmSync itself are built into a wheelhouse on the host with the host's pip (its
#    index, proxy and CA), cached under $CACHE/wheels; the image installs them with
#    `pip install --no-index`, so `docker build` needs no network.
# 3. swarmsync/swarmsync: one venv in /opt/swarmsync, user swarmsync (uid 10001), entrypoint
#    `swarmsync-entrypoint` (server, services, prefect-migrate, migrate, api, dashboard, worker, cli, ...).
# 4. swarmsync/services: the same base plus Debian's postgresql, redis-server and haproxy, for a
#    compose stack where no registry answers (commands: postgres, redis, haproxy).
#
# Needs: root (debootstrap) only for the debootstrap path; docker; python3 with venv.
# Env: SWARMSYNC_IMAGE_TAG (default: the package version and a hash of the checkout's path), SWARMSYNC_BASE_IMAGE (force a base),
#      SWARMSYNC_IMAGE_CACHE (default /var/cache/swarmsync), DEBIAN_MIRROR (default: from apt sources),
#      SWARMSYNC_IMAGES ("swarmsync services", the images to build).
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${SWARMSYNC_IMAGE_CACHE:-/var/cache/swarmsync}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)
# the default tag: the version and a hash of this checkout's path, so that two checkouts on one
# host never overwrite each other's images (infra/compose/setup.sh puts the same tag into .env)
TAG=${SWARMSYNC_IMAGE_TAG:-$VERSION-$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)}
if [ "${1:-}" = --print-tag ]; then echo "$TAG"; exit 0; fi
IMAGES=${SWARMSYNC_IMAGES:-swarmsync services}
COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT="$COMMIT-dirty"; fi
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SUITE=bookworm
BASE_PACKAGES="python3,python3-venv,ca-certificates,tzdata"

say() { echo "build: $*"; }
die() { echo "build: $*" >&2; exit 1; }
t0=$(date +%s)
since() { echo "$(( $(date +%s) - t0 )) s"; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (bash infra/host-setup.sh demo starts one)"
mkdir -p "$CACHE" 2>/dev/null || CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/swarmsync
mkdir -p "$CACHE"

# ---------------------------------------------------------------------------- 1. base image
mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  # the host's own Debian mirror, from the files apt reads (one-line .list and deb822 .sources);
  # `|| true`: a missing file must not end this function early (pipefail + inherit_errexit), which
  # once left the base image with an empty mirror in its sources.list
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -oE '^(URIs:|deb) +https?://[^ ]+/debian/?' | grep -v security | head -1 | awk '{print $2}' || true)
  echo "${m:-http://deb.debian.org/debian}"
}
base_image() {
  if [ -n "${SWARMSYNC_BASE_IMAGE:-}" ]; then echo "$SWARMSYNC_BASE_IMAGE"; return; fi
  local slim=python:3.11-slim-bookworm
  if docker image inspect "$slim" >/dev/null 2>&1 || timeout 60 docker pull -q "$slim" >/dev/null 2>&1; then
    echo "$slim"; return
  fi
  local hash tag tarball
  hash=$(printf '%s\n' "v2" "$SUITE" "$BASE_PACKAGES" | sha256sum | cut -c1-12)
  tag=swarmsync/debian-base:$SUITE-$hash
  if docker image inspect "$tag" >/dev/null 2>&1; then say "base: $tag (cached)" >&2; echo "$tag"; return; fi
  tarball=$CACHE/debian-base-$SUITE-$hash.tar
  if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || die "no registry answers, and debootstrap needs root: run as root (or set SWARMSYNC_BASE_IMAGE)"
    command -v debootstrap >/dev/null 2>&1 || { say "installing debootstrap" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }; }
    local rootfs
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "base: debootstrap $SUITE ($BASE_PACKAGES) from $(mirror) (a minute or two, once)" >&2
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$(mirror)" \
      > "$CACHE/debootstrap.log" 2>&1 || { rm -rf "$rootfs"; die "debootstrap failed; see $CACHE/debootstrap.log"; }
    # smaller and reproducible enough: no apt lists, caches or logs; Debian's security updates as a source
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$(mirror)" "$SUITE" "$(mirror)" "$SUITE" "$SUITE" > "$rootfs/etc/apt/sources.list"
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null \
    || die "docker import of $tarball failed"
  say "base: $tag imported from $tarball ($(since))" >&2
  echo "$tag"
}
BASE=$(base_image)
say "base image: $BASE"

# ---------------------------------------------------------------------------- 2. wheels
CTX=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
if [[ " $IMAGES " == *" swarmsync "* ]]; then
  lock=$HERE/requirements.lock
  lockhash=$(sha256sum "$lock" | cut -c1-12)
  wheels=$CACHE/wheels/$lockhash
  if [ ! -f "$wheels/.complete" ]; then
    say "wheels: downloading the pinned dependencies into $wheels"
    venv=$CACHE/pip-venv
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    mkdir -p "$wheels"
    "$venv/bin/pip" download -q --only-binary=:all: --no-deps -r "$lock" -d "$wheels" 2>&1 \
      | grep -v "^WARNING: Location" || true
    # every pinned package must be there (pip download fails loudly, but a filter above hides its exit code)
    [ "$(ls "$wheels"/*.whl | wc -l)" -ge "$(grep -cE '^[A-Za-z0-9]' "$lock")" ] \
      || die "wheels: fewer wheels in $wheels than pins in $lock"
    touch "$wheels/.complete"
  fi
  mkdir -p "$CTX/wheels"
  cp -l "$wheels"/*.whl "$CTX/wheels/" 2>/dev/null || cp "$wheels"/*.whl "$CTX/wheels/"
  # SwarmSync itself, from this checkout (tracked files only: no .venv, no test artifacts)
  src=$CTX/src
  mkdir -p "$src"
  git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$src" 2>/dev/null) \
    || (cd "$ROOT" && tar --exclude=.venv --exclude=.git -cf - . | tar -C "$src" -xf -)
  [ -x "$CACHE/pip-venv/bin/pip" ] || python3 -m venv "$CACHE/pip-venv"
  mkdir -p "$CTX/app"
  "$CACHE/pip-venv/bin/pip" wheel -q --no-deps -w "$CTX/app" "$src" 2>&1 | grep -v "^WARNING: Location" || true
  ls "$CTX"/app/swarmsync-*.whl >/dev/null 2>&1 || die "could not build SwarmSync's wheel from $ROOT"
  rm -rf "$src"
  cp "$lock" "$CTX/requirements.lock"
  cp "$HERE/entrypoint.sh" "$CTX/entrypoint.sh"
  say "wheels: $(ls "$CTX/wheels" | wc -l) ($(since))"

  say "image: swarmsync/swarmsync:$TAG from $BASE"
  docker build -q -f "$HERE/Dockerfile" -t "swarmsync/swarmsync:$TAG" \
    --build-arg BASE="$BASE" --build-arg VERSION="$VERSION" --build-arg COMMIT="$COMMIT" --build-arg CREATED="$CREATED" \
    --label org.opencontainers.image.revision="$COMMIT" --label org.opencontainers.image.version="$VERSION" \
    --label org.opencontainers.image.created="$CREATED" \
    "$CTX" >/dev/null
  say "image: swarmsync/swarmsync:$TAG ($(since))"
fi

# ---------------------------------------------------------------------------- 4. services image
if [[ " $IMAGES " == *" services "* ]]; then
  cp "$HERE/services-entrypoint.sh" "$CTX/services-entrypoint.sh"
  say "image: swarmsync/services:$TAG (postgresql, redis-server, haproxy from Debian) from $BASE"
  # apt-get inside the build reaches the Debian mirror through the host's network
  docker build -q --network host -f "$HERE/Dockerfile.services" -t "swarmsync/services:$TAG" \
    --build-arg BASE="$BASE" --label org.opencontainers.image.revision="$COMMIT" \
    --label org.opencontainers.image.version="$VERSION" "$CTX" >/dev/null
  say "image: swarmsync/services:$TAG ($(since))"
fi
say "done in $(since): swarmsync/swarmsync:$TAG, swarmsync/services:$TAG (SWARMSYNC_IMAGE_TAG=$TAG)"
