"""What SwarmSync deploys into Prefect: work pools and their job deployments, recurring jobs
(the Hibernator) and the embedded stack. Installed as `swarmsync.deployments`; see README.md."""
