"""A pipeline step's `secret_env`: values given at submission, stored as Prefect Secret blocks owned by
the submitter (as `swarmsync submit --secret-env`), never kept in the pipeline's parameters, logs or
archive.

    steps:
      publish:
        image: busybox
        secret_env: {TOKEN: "s3cret"}     # the container sees $TOKEN; the run names only a block

Resolution (`pipelines.resolve`) takes the values out of the step and puts the placeholder
`secret_owners.NEW_SECRET` in the step's `secrets` (admission counts it as the caller's own block);
once every step is admitted, `store_step_secrets` saves one block per value (a matrix step's instances
share them) and names them in the steps. Only the block names reach the flow run.
"""

from __future__ import annotations

import re
from typing import Any

from swarmsync.auth import secret_owners
from swarmsync.pipeline_spec import PipelineError, PipelineSpec, ResolvedPipeline
from swarmsync.spec import ENV_NAME_PATTERN

MAX_SECRETS = 100
MAX_VALUE = 65536


def take_secret_env(fields: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The step's job fields without `secret_env`, and its values (checked: env names -> text)."""
    fields = dict(fields)
    values = fields.pop("secret_env", None) or {}
    if not isinstance(values, dict) or len(values) > MAX_SECRETS:
        raise PipelineError({f"{where}.secret_env": f"a mapping of at most {MAX_SECRETS} environment variable "
                             "names to values"})
    for name, value in values.items():
        if not isinstance(name, str) or not re.fullmatch(ENV_NAME_PATTERN, name):
            raise PipelineError({f"{where}.secret_env": f"{name!r} is not an environment variable name"})
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise PipelineError({f"{where}.secret_env.{name}": f"a text value of at most {MAX_VALUE} characters"})
    return fields, values


def secret_values(spec: PipelineSpec) -> dict[str, dict[str, str]]:
    """step group -> its `secret_env` values (checked), for the steps that have any."""
    out = {}
    for group, step in spec.steps.items():
        _fields, values = take_secret_env(step.job, f"steps.{group}")
        if values:
            out[group] = values
    return out


def store_step_secrets(resolved: ResolvedPipeline, values: dict[str, dict[str, str]], *, owner: str | None,
                       kind: str, ref: str | None, project: str) -> tuple[ResolvedPipeline, list[str]]:
    """The pipeline with each step's placeholders replaced by new Secret blocks of `owner` (one per value
    and step group), and the blocks' names. Call only once every step is admitted."""
    from swarmsync.jobs import store_secrets

    stored = {group: store_secrets(env, owner, kind, ref, project) for group, env in values.items()}
    steps = []
    for step in resolved.steps:
        blocks = stored.get(step.group, {})
        placeholders = {var for var, block in step.job.secrets.items() if block == secret_owners.NEW_SECRET}
        missing = placeholders - set(blocks)
        if missing:  # a placeholder no value stands for: never let it reach a run
            raise PipelineError({f"steps.{step.group}.secrets": f"{sorted(missing)} name no stored secret"})
        if blocks:
            job = step.job.model_copy(update={"secrets": {**step.job.secrets, **blocks}})
            step = step.model_copy(update={"job": job})
        steps.append(step)
    return resolved.model_copy(update={"steps": steps}), [b for env in stored.values() for b in env.values()]
