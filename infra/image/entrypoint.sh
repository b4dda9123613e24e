#!/bin/sh
# swarmsync-entrypoint COMMAND [ARGS...]: see `swarmsync-entrypoint help` (swarmsync.deployments.container)
if [ "${1:-}" = healthcheck ]; then
  # the module by its path, without importing the swarmsync package (seconds of CPU): a health
  # check must stay cheap; the HTTP checks need only the standard library
  exec /opt/swarmsync/bin/python -c 'import runpy, sysconfig
runpy.run_path(sysconfig.get_paths()["purelib"] + "/swarmsync/deployments/container.py", run_name="__main__")' "$@"
fi
exec /opt/swarmsync/bin/python -m swarmsync.deployments.container "$@"
