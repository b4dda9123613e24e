"""SwarmSync: container-job orchestration on Prefect 3.

    import swarmsync
    job = swarmsync.submit("busybox", ["echo", "hello"])
    print(job.wait(60).result().output)
"""

from swarmsync import pipelines, templates
from swarmsync.client import APIError, Client
from swarmsync.compose import ComposeError, load_compose
from swarmsync.deployments import schedules
from swarmsync.errors import ConflictError, Error, InvalidError, NotFoundError, RefusedError, UnavailableError
from swarmsync.jobs import Job, JobNotFound, JobResult, Submission, get_job, list_jobs, submit, submit_many
from swarmsync.pipeline_spec import PipelineError
from swarmsync.pipelines import Pipeline, get_pipeline, pipeline
from swarmsync.spec import HealthCheck, InputFile, JobSpec, JobSpecError, ServiceSpec

__all__ = [
    "APIError",
    "Client",
    "ComposeError",
    "ConflictError",
    "Error",
    "HealthCheck",
    "InputFile",
    "InvalidError",
    "Job",
    "JobNotFound",
    "JobResult",
    "JobSpec",
    "JobSpecError",
    "NotFoundError",
    "RefusedError",
    "UnavailableError",
    "get_job",
    "schedules",
    "templates",
    "list_jobs",
    "Pipeline",
    "PipelineError",
    "get_pipeline",
    "pipeline",
    "pipelines",
    "load_compose",
    "ServiceSpec",
    "submit",
    "submit_many",
    "Submission",
]
__version__ = "0.1.0"
