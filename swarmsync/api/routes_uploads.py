"""/worker/archives: a worker host returns a run's archive to Core (worker token only; users: 401).

- `PUT /worker/archives/{run}/files/{name}?offset=N`: one chunk (body, at most SWARMSYNC_MAX_BODY_BYTES),
  its SHA-256 in `X-Chunk-SHA256` (a mismatch: 422, nothing kept); appended only at the size Core holds
  (else 409 with that size in `Upload-Offset` and `size`: the client resumes there).
- `GET /worker/archives/{run}/files/{name}`: the size Core holds (the resume point).
- `POST /worker/archives/{run}/commit`: the manifest.json bytes (`X-Manifest-SHA256`); Core checks every
  file against it, writes them and then the manifest into its store (the pool's `archive_block`, else
  the installation's), indexes the run, removes the staging. Idempotent.
- `POST /worker/archives/{run}/unstored`: the index row of a run whose upload failed for good.

Only the token that claimed the run (`worker_tokens.claimed_by`) may upload it: another token, of this
pool or another, is answered 404 as if the run did not exist (a 403 would read as "token refused").
Staging lives in `$SWARMSYNC_HOME/uploads/<run id>/` (`swarmsync.archive.staging`).
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from swarmsync.api.errors import error_response, responses
from swarmsync.api.routes_worker import gateway
from swarmsync.api.worker_auth import worker_caller
from swarmsync.archive import staging
from swarmsync.archive.errors import ArchiveNotFound
from swarmsync.archive.layout import MANIFEST, check_name
from swarmsync.auth import worker_tokens
from swarmsync.auth.worker_tokens import WorkerPrincipal

router = APIRouter(prefix="/worker/archives", tags=["worker hosts"], responses=responses(401, 404))


class Held(BaseModel):
    name: str
    size: int = Field(description="Bytes of the file Core holds: where the upload resumes")


class CommitOut(BaseModel):
    location: str = Field(description="Where Core's store keeps the archive ('' for an unstored outcome)")
    manifest_sha256: str
    manifest: dict[str, Any]
    already: bool = Field(description="The run was archived already: nothing was written again")


class Unstored(BaseModel):
    manifest: dict[str, Any] = Field(description="The manifest as the worker host keeps it in its spool")
    manifest_sha256: str = Field(min_length=64, max_length=64)


async def _claimed(request: Request, principal: WorkerPrincipal, run_id: str) -> Response | None:
    """None when the token claimed this run of its pool; else the 404 to answer."""
    await gateway(request).scope.check_run(principal, run_id)  # NotYours: 404 (api/errors.py)
    if not await anyio.to_thread.run_sync(worker_tokens.claimed_by, principal, run_id):
        return error_response(404, f"flow run {run_id} was not claimed by worker token {principal.name!r}")
    return None


def _checked(run_id: str, name: str | None = None) -> str | Response:
    """The run id (normalized) if it is one and `name` is an archive file; else the 404/400 to answer."""
    try:
        checked = check_name(run_id, name) if name is not None else check_name(run_id, "stdout.txt")
    except ArchiveNotFound as exc:
        return error_response(400 if name is not None and "is not an archive file" in str(exc) else 404, str(exc))
    if name == MANIFEST:
        return error_response(400, "manifest.json is not uploaded as a file: it is the body of the commit")
    return checked


async def _allowed(request: Request, principal: WorkerPrincipal, run_id: str,
                   name: str | None = None) -> str | Response:
    """The run id (normalized) when the name is an archive file and the token claimed the run; else the answer."""
    checked = _checked(run_id, name)
    if isinstance(checked, Response):
        return checked
    return await _claimed(request, principal, checked) or checked


def _held_answer(status: int, name: str, size: int, detail: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"name": name, "size": size}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers={staging.OFFSET_HEADER: str(size)})


@router.get("/{run_id}/files/{name:path}", response_model=Held, responses=responses(400))
async def held(run_id: str, name: str, request: Request,
               principal: WorkerPrincipal = Depends(worker_caller)) -> Response:
    """How many bytes of the file Core holds for this run (0: none yet): where an upload resumes."""
    checked = await _allowed(request, principal, run_id, name)
    if isinstance(checked, Response):
        return checked
    return _held_answer(200, name, await anyio.to_thread.run_sync(staging.held, checked, name))


@router.put("/{run_id}/files/{name:path}", response_model=Held, responses=responses(400, 409, 413, 422))
async def put_chunk(run_id: str, name: str, request: Request, offset: int = Query(ge=0),
                    x_chunk_sha256: str = Header(min_length=64, max_length=64,
                                                 description="The chunk's SHA-256, hex"),
                    principal: WorkerPrincipal = Depends(worker_caller)) -> Response:
    """Append one chunk of the file at `offset`, which must be the size Core holds."""
    checked = await _allowed(request, principal, run_id, name)
    if isinstance(checked, Response):
        return checked
    data = await request.body()
    cap = await _file_cap(request, principal)
    if offset + len(data) > cap:
        return error_response(413, f"{name}: {offset + len(data)} bytes is more than any file of a job of pool "
                                   f"{principal.pool!r} may have ({cap}: its max_output_bytes / max_files_bytes)")
    try:
        size = await anyio.to_thread.run_sync(staging.append, checked, name, offset, data, x_chunk_sha256)
    except staging.OffsetMismatch as exc:  # ChunkCorrupt: 422 (api/errors.py)
        return _held_answer(409, name, exc.size, str(exc))
    return _held_answer(200, name, size)


async def _file_cap(request: Request, principal: WorkerPrincipal) -> int:
    """The most bytes one archived file of the pool's jobs can have (its policy's output and files caps, and
    room for the notes SwarmSync adds): a token cannot fill Core's staging disk past what a job may write."""
    from swarmsync.policy import HostPolicy

    policy = HostPolicy.from_template((await gateway(request).scope.pool(principal.pool)).get("base_job_template"))
    return max(policy.max_output_bytes, policy.max_files_bytes) + (1 << 20)


async def _run_facts(request: Request, principal: WorkerPrincipal, run_id: str) -> tuple[str | None, dict[str, Any]]:
    """The pool's archive block (its base job template's default) and the run's project and owner, as
    Core reads them: a worker decides neither where its archive goes nor whose it is."""
    from prefect.client.schemas.objects import FlowRun

    from swarmsync.owners import project_of
    from swarmsync.worker import run_submitter

    response = await gateway(request).upstream.get(f"flow_runs/{run_id}")
    response.raise_for_status()
    run = FlowRun.model_validate(response.json())
    pool = await gateway(request).scope.pool(principal.pool)
    properties = ((pool.get("base_job_template") or {}).get("variables") or {}).get("properties") or {}
    block = (properties.get("archive_block") or {}).get("default") or None
    return block, {"project": project_of(run), "owner": run_submitter(run), "pool": principal.pool}


def _committed(done: staging.Committed) -> CommitOut:
    return CommitOut(location=done.location, manifest_sha256=done.manifest_sha256, manifest=done.manifest,
                     already=done.already)


@router.post("/{run_id}/commit", response_model=CommitOut, responses=responses(409, 413, 422, 503))
async def commit(run_id: str, request: Request,
                 x_manifest_sha256: str | None = Header(None, min_length=64, max_length=64),
                 principal: WorkerPrincipal = Depends(worker_caller)) -> CommitOut | Response:
    """Check the staged files against the manifest (the body: manifest.json's bytes), write them and the
    manifest into Core's store, index the run; answers where it is. The same commit again answers the same."""
    checked = await _allowed(request, principal, run_id)
    if isinstance(checked, Response):
        return checked
    body = await request.body()
    block, facts = await _run_facts(request, principal, checked)
    try:
        done = await anyio.to_thread.run_sync(staging.commit, checked, body, x_manifest_sha256, block, facts)
    except staging.UploadIncomplete as exc:  # ChunkCorrupt, ManifestInvalid: 422 (api/errors.py)
        return JSONResponse({"detail": str(exc), "held": exc.held}, status_code=409)
    await anyio.to_thread.run_sync(staging.sweep_stale)  # uploads given up long ago (at most hourly)
    return _committed(done)


@router.post("/{run_id}/unstored", response_model=CommitOut, responses=responses(422))
async def unstored(run_id: str, body: Unstored, request: Request,
                   principal: WorkerPrincipal = Depends(worker_caller)) -> CommitOut | Response:
    """Index the outcome of a run whose archive could not reach Core (no location: downloads say why and
    that its files are on the worker host); a run archived already keeps its archive."""
    checked = await _allowed(request, principal, run_id)
    if isinstance(checked, Response):
        return checked
    block, facts = await _run_facts(request, principal, checked)
    done = await anyio.to_thread.run_sync(staging.record_unstored, checked, body.manifest,
                                          body.manifest_sha256.lower(), block, facts)  # ManifestInvalid: 422
    return _committed(done)
