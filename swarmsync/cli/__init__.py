"""The `swarmsync` command line (Typer + Rich, as Prefect's own CLI)."""
