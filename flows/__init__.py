"""Prefect flows and tasks of SwarmSync: the container job (and, later, retention)."""
