"""Prefect Block classes of SwarmSync (see README.md)."""
