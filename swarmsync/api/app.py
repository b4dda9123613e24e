"""The SwarmSync API application: `create_app()` includes the routers, the error mapping
(`errors.py`) and the request limits (`middleware.py`); the endpoints live in `routes_*.py`.

Add a resource by writing `routes_<resource>.py` with an `APIRouter(prefix=..., tags=...)`
and appending its router to ROUTERS; its endpoints guard themselves with
`Depends(require(Permission.X))` from `deps.py`.
"""

from __future__ import annotations

from fastapi import FastAPI

from swarmsync import __version__
from swarmsync.api import (
    errors,
    routes_alerts,
    routes_audit,
    routes_auth,
    routes_health,
    routes_jobs,
    routes_keys,
    routes_me,
    routes_metrics,
    routes_pipeline_schedules,
    routes_pipelines,
    routes_pools,
    routes_projects,
    routes_schedules,
    routes_templates,
    routes_tls,
    routes_tokens,
    routes_uploads,
    routes_usage,
    routes_users,
    routes_worker,
    routes_worker_tokens,
    routes_workers,
)
from swarmsync.api.lifespan import lifespan
from swarmsync.api.middleware import RefuseSecretsInUrls, RequestLimits
from swarmsync.settings import get_settings

# The seam: one router per resource.
ROUTERS = [
    routes_auth.router,
    routes_me.router,
    routes_keys.router,
    routes_jobs.router,
    routes_pipeline_schedules.router,  # before /pipelines/{pipeline_id}
    routes_pipelines.router,
    routes_health.router,
    routes_workers.router,
    routes_pools.router,
    routes_users.router,
    routes_tokens.router,
    routes_audit.router,
    routes_schedules.router,
    routes_templates.router,
    routes_projects.router,
    routes_worker_tokens.router,
    routes_worker.router,
    routes_uploads.router,
    routes_tls.router,
    routes_usage.router,
    routes_alerts.router,
    routes_metrics.router,
]


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=lifespan, title="SwarmSync API", version=__version__,
        description="Container jobs on Prefect: submit, follow, fetch results; accounts, tokens and audit. "
        "Authenticate with 'Authorization: Bearer <token>' (a session from /auth/login, or an API token).",
    )
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    app.add_middleware(RefuseSecretsInUrls)
    app.add_middleware(RequestLimits, max_bytes=get_settings().max_body_bytes)
    app.add_middleware(routes_metrics.RequestLatency)  # outermost: times refusals too
    return app
