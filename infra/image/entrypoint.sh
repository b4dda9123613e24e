#!/bin/sh
# swarmsync-entrypoint COMMAND [ARGS...]: see `swarmsync-entrypoint help` (swarmsync.deployments.container)
exec /opt/swarmsync/bin/python -m swarmsync.deployments.container "$@"
