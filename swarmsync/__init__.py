"""SwarmSync: container-job orchestration on Prefect 3.

    import swarmsync
    job = swarmsync.submit("busybox", ["echo", "hello"])
    print(job.wait(60).result().output)

The public names load on first use (module `__getattr__`, PEP 562): most of them import
Prefect, and the command line (`swarmsync --help`, commands that only talk to a SwarmSync
API) must start without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swarmsync.errors import ConflictError, Error, InvalidError, NotFoundError, RefusedError, UnavailableError
from swarmsync.lazy_names import loader

if TYPE_CHECKING:
    from swarmsync import pipelines, templates
    from swarmsync.client import APIError, Client
    from swarmsync.compose import ComposeError, load_compose
    from swarmsync.deployments import schedules
    from swarmsync.job_handle import Submission
    from swarmsync.jobs import Job, JobNotFound, JobResult, get_job, list_jobs, submit, submit_many
    from swarmsync.pipeline_spec import PipelineError
    from swarmsync.pipelines import Pipeline, get_pipeline, pipeline
    from swarmsync.spec import HealthCheck, InputFile, JobSpec, JobSpecError, ServiceSpec

# public name -> the module that holds it (a name equal to its module's last part is the module)
_PUBLIC = {
    "APIError": "swarmsync.client",
    "Client": "swarmsync.client",
    "ComposeError": "swarmsync.compose",
    "load_compose": "swarmsync.compose",
    "schedules": "swarmsync.deployments.schedules",
    "templates": "swarmsync.templates",
    "pipelines": "swarmsync.pipelines",
    "Job": "swarmsync.jobs",
    "JobNotFound": "swarmsync.jobs",
    "JobResult": "swarmsync.jobs",
    "Submission": "swarmsync.job_handle",
    "get_job": "swarmsync.jobs",
    "list_jobs": "swarmsync.jobs",
    "submit": "swarmsync.jobs",
    "submit_many": "swarmsync.jobs",
    "PipelineError": "swarmsync.pipeline_spec",
    "Pipeline": "swarmsync.pipelines",
    "get_pipeline": "swarmsync.pipelines",
    "pipeline": "swarmsync.pipelines",
    "HealthCheck": "swarmsync.spec",
    "InputFile": "swarmsync.spec",
    "JobSpec": "swarmsync.spec",
    "JobSpecError": "swarmsync.spec",
    "ServiceSpec": "swarmsync.spec",
}

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


__getattr__ = loader(__name__, _PUBLIC, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
