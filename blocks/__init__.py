"""SwarmSync's Prefect Block classes (installed as `swarmsync.blocks`; see README.md).

Block classes import Prefect only: the core reads and writes them (`swarmsync.templates`).
"""

from swarmsync.blocks.alert_webhook import AlertWebhook
from swarmsync.blocks.job_template import JobTemplate

__all__ = ["AlertWebhook", "JobTemplate"]
