"""Core's side of worker hosts with tokens: the command that joins a host, and handing back the runs
of a revoked token. Used by the API (`/worker-tokens`) and by the CLI on the server host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from swarmsync.settings import get_settings

HAND_BACK_DELAY = timedelta(seconds=45)  # the revoked host stops its containers first (docs/deployment.md)


def default_server_url() -> str:
    """Core's URL as worker hosts reach it: SWARMSYNC_PUBLIC_URL, else the API's own address."""
    settings = get_settings()
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.api_bind_host
    host = "127.0.0.1" if host == "0.0.0.0" else host
    scheme = "http" if settings.single_user else "https"
    return f"{scheme}://{host}:{settings.api_port}"


def ca_fingerprint() -> str | None:
    """SHA-256 of the CA Core made for itself (None: an admin's certificate, or no TLS of Core's own)."""
    try:
        from swarmsync.tls import core_ca_fingerprint
    except ImportError:  # pragma: no cover - TLS support not installed
        return None
    return core_ca_fingerprint()


def join_command(server: str, token: str, fingerprint: str | None) -> str:
    """What to run on the new host."""
    pin = f" --ca-fingerprint {fingerprint}" if fingerprint else ""
    return f"swarmsync worker start --server {server} --token {token}{pin}"


def check_pool(name: str) -> None:
    """PoolNotFound (404) unless the work pool exists. Call within `prefect_api()`."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from swarmsync.policy import PoolNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            raise PoolNotFound(f"no work pool named {name!r}; see 'swarmsync pool create'") from None


def hand_back(flow_run_ids: list[str], token: str) -> list[str]:
    """Send the runs of a revoked token that are still Pending or Running back to their queue
    (AwaitingRetry, due HAND_BACK_DELAY later so that the revoked host has stopped them first); their ids.
    Call within `prefect_api()`."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
    from prefect.client.schemas.objects import StateType
    from prefect.states import AwaitingRetry

    from swarmsync.auth import worker_tokens

    async def run() -> list[str]:
        if not flow_run_ids:
            return []
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=flow_run_ids),
                state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.PENDING, StateType.RUNNING]))))
            due = datetime.now(UTC) + HAND_BACK_DELAY
            for run in runs:
                await client.set_flow_run_state(run.id, AwaitingRetry(
                    scheduled_time=due, message=f"handed back: worker token {token} was revoked"), force=True)
            return [str(run.id) for run in runs]

    handed = anyio.run(run)
    worker_tokens.forget_claims(handed)
    return handed
