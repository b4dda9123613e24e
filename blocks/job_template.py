"""The `JobTemplate` block: a saved, named container job, shown in the Prefect UI
(Blocks > SwarmSync Job Template) and usable by `swarmsync submit --template` and by
schedules.

Secret environment values are never stored in the template: `secrets` maps each
variable to the name of a Prefect `Secret` block that holds its value.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field


class JobTemplate(Block):
    """A reusable container job: image, command, environment and limits.

    Attributes:
        image: Image reference, NAME[:TAG] or NAME@sha256:DIGEST.
        command: Command as a list (exec form), or a shell string run with /bin/sh -c.
        env: Plain environment variables.
        secrets: Secret environment variables: NAME -> name of a Prefect Secret block.
        cpu, memory, pids_limit, timeout: Limits (memory like '256m').
        tags: Prefect tags put on each run.
        options: Any other JobSpec field (entrypoint, working_dir, retries, output_dir, gpus, ...).
        project: The project it belongs to (None: saved before projects, the default one).
        owner: Who saved it through the SwarmSync API (None: the server host itself).

    Example:
        ```python
        from swarmsync.blocks.job_template import JobTemplate

        JobTemplate(image="busybox", command="echo hello", memory="64m").save("hello")
        spec_fields = JobTemplate.load("hello").job_fields()
        ```
    """

    _block_type_name = "SwarmSync Job Template"
    _block_type_slug = "swarmsync-job-template"
    _description = "A saved SwarmSync container job (image, command, env, limits) for submit and schedules."
    _documentation_url = "https://github.com/swarmsync/swarmsync#hibernator"

    image: str = Field(description="Image reference, e.g. busybox:1.36 or app@sha256:...")
    command: list[str] | str | None = Field(
        default=None, description="Command as a list, or a shell string run with /bin/sh -c"
    )
    env: dict[str, str] = Field(default_factory=dict, description="Plain environment variables")
    secrets: dict[str, str] = Field(
        default_factory=dict, description="Secret variables: NAME -> Prefect Secret block name"
    )
    cpu: float | None = Field(default=None, description="CPU cores, e.g. 0.5")
    memory: str | None = Field(default=None, description="Memory limit, e.g. 256m")
    pids_limit: int | None = Field(default=None, description="Most processes in the container")
    timeout: float | None = Field(default=None, description="Seconds before the job is stopped")
    tags: list[str] = Field(default_factory=list, description="Prefect tags on each run")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Other JobSpec fields (entrypoint, retries, output_dir, ...)"
    )
    project: str | None = Field(default=None, description="The project it belongs to (none: the default one)")
    owner: str | None = Field(default=None, description="Who saved it through the SwarmSync API")

    @classmethod
    def spec_columns(cls) -> set[str]:
        """The JobSpec fields this block shows as fields of their own (in the Prefect UI): all of its
        fields but `options` and its record; every other JobSpec field, present or added later, is kept
        in `options`."""
        return set(cls.model_fields) - {"options", "project", "owner"}

    def job_fields(self) -> dict[str, Any]:
        """The template as JobSpec keyword arguments (unset limits left out)."""
        fields = self.model_dump(include=self.spec_columns(), exclude_none=True)
        return {**fields, **self.options}
