"""What a job's outcome means: its message, its final Prefect state, its manifest and the
summary shown on the run. The job flow (`swarmsync.flows.container_job`) only calls these.

    >>> from swarmsync.spec import JobSpec
    >>> describe(JobSpec(image="busybox", command="true"), 3, None)
    'exit code 3 (allowed: 0)'
    >>> final_state_type(JobSpec(image="busybox", command="true", allowed_exit_codes=[0, 3]), 3, None)
    'COMPLETED'
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.states import Cancelled, Completed, Failed, State

from swarmsync.docker_runner import ContainerOutcome, ResolvedImage
from swarmsync.policy import HostPolicy, human_size
from swarmsync.spec import JobSpec

_STATES = {"COMPLETED": Completed, "FAILED": Failed, "CANCELLED": Cancelled}


def describe(spec: JobSpec, exit_code: int | None, reason: str | None, policy: HostPolicy | None = None) -> str:
    """The state message of a container that ended: exit code and why.

    >>> describe(JobSpec(image="busybox", command="yes"), 143, "output-cap")
    "stopped: output exceeded the pool's max_output_bytes (1 GiB) (exit code 143)"
    """
    policy = policy or HostPolicy()
    if reason == "output-cap":
        return (f"stopped: output exceeded the pool's max_output_bytes ({human_size(policy.max_output_bytes)}) "
                f"(exit code {exit_code})")
    if reason == "files-cap":
        return (f"failed: output_dir exceeded the pool's max_files_bytes ({human_size(policy.max_files_bytes)}) "
                f"and was not archived (exit code {exit_code})")
    if reason == "no-space":
        return (f"failed: no space left: the job filled the writable storage this pool bounds "
                f"({storage_bound(policy)}) (exit code {exit_code})")
    if reason == "timeout":
        return f"timed out after {spec.timeout:g} s (exit code {exit_code})"
    if reason == "oom":
        return f"killed: out of memory (limit {spec.memory or 'pool default'}, exit code {exit_code})"
    if reason == "cancelled":
        return f"cancelled (exit code {exit_code})"
    if exit_code in spec.allowed_exit_codes:
        return f"exit code {exit_code}"
    return f"exit code {exit_code} (allowed: {', '.join(map(str, spec.allowed_exit_codes))})"


NO_SPACE = b"No space left on device"  # strerror(ENOSPC), as shells and most tools print it
TAIL_BYTES = 64 * 1024


def storage_bound(policy: HostPolicy) -> str:
    """The pool's bound of a job's writable storage, in words."""
    bounds = []
    if policy.read_only_rootfs:
        bounds.append(f"read_only_rootfs, /tmp of {human_size(policy.scratch_size)} (scratch_size)")
    if policy.storage_size:
        bounds.append(f"storage_size {human_size(policy.storage_size)}")
    return "; ".join(bounds) or "none"


def ran_out_of_space(spool: Path, exit_code: int | None, spec: JobSpec, policy: HostPolicy) -> bool:
    """Whether a failed job on a pool that bounds its writable storage ended because it was full:
    its last stderr (or, in a group, interleaved output) says ENOSPC's "No space left on device"."""
    if exit_code in spec.allowed_exit_codes or not (policy.read_only_rootfs or policy.storage_size):
        return False
    for name in ("stderr.txt", "output.txt"):
        try:
            with open(spool / name, "rb") as f:
                f.seek(max(0, f.seek(0, 2) - TAIL_BYTES))
                if NO_SPACE in f.read():
                    return True
        except OSError:
            continue
    return False


def final_state_type(spec: JobSpec, exit_code: int | None, reason: str | None) -> str:
    """COMPLETED when the exit code is allowed and nothing went wrong, CANCELLED when
    cancelled, FAILED otherwise (timeout, OOM, refused, error, a disallowed exit code)."""
    if reason == "cancelled":
        return "CANCELLED"
    if reason is None and exit_code in spec.allowed_exit_codes:
        return "COMPLETED"
    return "FAILED"


def is_failure(spec: JobSpec, exit_code: int | None, reason: str | None) -> bool:
    """Whether the container's end is a failure worth a retry of `run-container`."""
    return reason != "cancelled" and (reason is not None or exit_code not in spec.allowed_exit_codes)


def final_state(state_type: str, message: str | None, data: Any = None) -> State:
    """The Prefect state for COMPLETED / FAILED / CANCELLED (anything else: Failed)."""
    return _STATES.get(state_type, Failed)(message=message, data=data)


def build_manifest(spec: JobSpec, image: ResolvedImage | None, outcome: ContainerOutcome, state: str,
                   worker: str) -> dict[str, Any]:
    """The manifest before the archive adds `job_id` and the files' SHA-256s (no secrets:
    the spec's public form keeps only the names of its Secret blocks)."""
    manifest = {
        "spec": spec.public_dict(),
        "image_digest": image.digest if image else None,
        "image_id": image.image_id if image else None,
        "state": state,
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
        "message": outcome.message,
        "output_note": outcome.output_note,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "duration_seconds": round(outcome.finished_at - outcome.started_at, 3),
        "worker": worker,
    }
    if "containers" in outcome.extra:  # a job with services: every container, its digest, exit code, timings
        manifest["containers"] = outcome.extra["containers"]
    if "usage" in outcome.extra:  # what its containers used (swarmsync/usage.py); none: it never ran
        manifest["usage"] = outcome.extra["usage"]
    return manifest


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the run's final state carries as data."""
    return {k: manifest.get(k) for k in ("job_id", "exit_code", "reason", "message", "files")}


def summary_markdown(manifest: dict[str, Any], location: str) -> str:
    """The run's artifact (markdown): state, image, result, a link to the archive and every file's checksum.
    One artifact per job: a second (Prefect's link artifact, before session 20) cost the worker a request and the
    Prefect server a row and an event per job for a link this one carries."""
    rows = "\n".join(
        f"| `{name}` | {meta['size']} | `{meta['sha256']}` |" for name, meta in manifest["files"].items()
    )
    return (
        f"### Job {manifest['job_id']}: {manifest['state']}\n\n"
        f"- image: `{manifest['spec']['image']}` ({manifest['image_digest']})\n"
        f"- result: {manifest['message']}\n- archive: [archived result]({archive_link(location)}) `{location}`\n\n"
        f"| file | bytes | sha256 |\n|---|---|---|\n{rows}\n"
    )


def archive_link(location: str) -> str:
    """A link to an archive location: local folders as file:// URLs."""
    return f"file://{location}" if location.startswith("/") else location


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None
