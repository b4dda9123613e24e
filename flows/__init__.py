"""Prefect flows of SwarmSync: the container job and retention (installed as `swarmsync.flows`)."""
