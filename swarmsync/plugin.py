"""SwarmSync as a Prefect integration: the module the `prefect.collections` entry point loads.

Importing it registers, as `prefect_docker/__init__.py` does for its package, the
`swarmsync` worker type (`prefect worker start --type swarmsync`) and SwarmSync's block
types (Blocks > SwarmSync Job Template in the Prefect UI) with Prefect's registries.
"""

from swarmsync.blocks import AlertWebhook, JobTemplate
from swarmsync.worker import SwarmSyncWorker

__all__ = ["AlertWebhook", "JobTemplate", "SwarmSyncWorker"]
