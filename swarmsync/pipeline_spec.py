"""The pipeline file: steps (each a full JobSpec) that depend on each other (`needs`), with
`when`, `matrix` and `inputs_from`, checked and resolved before anything runs.

    name: nightly-report
    max_parallel: 4
    steps:
      fetch:   {image: busybox, command: [...], output_dir: /out}
      report:  {needs: [fetch], inputs_from: {fetch: /in}, image: busybox, command: [...]}
      cleanup: {needs: [report], when: failure, image: busybox, command: [...]}

`parse_pipeline` reads the file (YAML or JSON) into a `PipelineSpec`; `PipelineSpec.resolve` checks the
DAG (cycles, unknown steps, bad `inputs_from`: `PipelineError`, which names each field; the API answers
422) and expands each `matrix` into one step per combination (`build[region=eu]`), with
`${{ matrix.X }}` replaced in the command and env. The result, a `ResolvedPipeline`, is what the
`pipeline` flow runs (its one parameter) and what admission checks, step by step.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmsync.errors import InvalidError
from swarmsync.spec import JobSpec, JobSpecError

When = Literal["success", "failure", "always"]
STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PIPELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MATRIX_REF = re.compile(r"\$\{\{\s*matrix\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_STEPS = 256  # after matrix expansion
MAX_PARALLEL = 64
STEP_KEYS = ("needs", "when", "matrix", "inputs_from", "template", "pool", "queue")


class PipelineError(InvalidError):
    """A pipeline that cannot run; `errors` maps each wrong field (e.g. `steps.report.needs`) to why."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors.items()))


class StepSpec(BaseModel):
    """One step as written: the pipeline's keys plus the job's own (`job`, a JobSpec's fields)."""

    model_config = ConfigDict(extra="forbid")

    needs: list[str] = Field(default_factory=list, description="Steps that must end before this one starts")
    when: When = Field(default="success", description="success: every step it needs succeeded; failure: "
                       "one of them (or one they need) failed; always: once they ended")
    matrix: dict[str, list[str | int | float | bool]] = Field(
        default_factory=dict, description="Run the step once per combination of these values")
    inputs_from: dict[str, str] = Field(
        default_factory=dict, description="step -> folder: that step's archived output folder, mounted here")
    template: str | None = Field(default=None, description="A saved job template (its fields, with overrides)")
    pool: str | None = Field(default=None, description="Work pool (default: the pipeline's)")
    queue: str | None = Field(default=None, description="Work queue of the pool")
    job: dict[str, Any] = Field(default_factory=dict, description="The JobSpec fields (image, command, ...)")


class ResolvedStep(BaseModel):
    """A step as it runs: matrix expanded, its job a complete JobSpec (a template applied)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    group: str = Field(description="The step's name in the file (a matrix step's instances share it)")
    needs: list[str] = Field(default_factory=list, description="Resolved step names")
    when: When = "success"
    inputs_from: dict[str, str] = Field(default_factory=dict)
    pool: str | None = None
    queue: str | None = None
    template: str | None = Field(default=None, description="The saved template its job came from (admission: "
                                 "the template's own secrets serve it)")
    job: JobSpec


class ResolvedPipeline(BaseModel):
    """What the `pipeline` flow runs: every step resolved, in an order where each comes after its needs."""

    model_config = ConfigDict(extra="forbid")

    name: str
    max_parallel: int = Field(default=4, ge=1, le=MAX_PARALLEL)
    steps: list[ResolvedStep]

    def step(self, name: str) -> ResolvedStep:
        return next(s for s in self.steps if s.name == name)

    def edges(self) -> list[tuple[str, str]]:
        return [(need, step.name) for step in self.steps for need in step.needs]


class PipelineSpec(BaseModel):
    """A pipeline file as written."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The pipeline's name (its runs are named after it)")
    max_parallel: int = Field(default=4, ge=1, le=MAX_PARALLEL, description="Steps running at once, at most")
    pool: str | None = Field(default=None, description="Default work pool of its steps")
    steps: dict[str, StepSpec]

    @classmethod
    def from_data(cls, data: Any) -> PipelineSpec:
        """From a parsed file: each step's keys outside STEP_KEYS are its job's fields."""
        if not isinstance(data, dict):
            raise PipelineError({"pipeline": "a pipeline is a mapping with name and steps"})
        steps = data.get("steps")
        if not isinstance(steps, dict) or not steps:
            raise PipelineError({"steps": "give at least one step: a mapping of step name -> step"})
        shaped: dict[str, Any] = {}
        for name, step in steps.items():
            if not isinstance(step, dict):
                raise PipelineError({f"steps.{name}": "a step is a mapping (image, command, needs, ...)"})
            own = {k: v for k, v in step.items() if k in STEP_KEYS}
            job = {k: v for k, v in step.items() if k not in STEP_KEYS}
            if isinstance(step.get("job"), dict):  # the JSON form may nest the job
                job = {**step["job"], **{k: v for k, v in job.items() if k != "job"}}
            shaped[str(name)] = {**own, "job": job}
        try:
            return cls(**{**data, "steps": shaped})
        except ValidationError as exc:
            raise PipelineError({".".join(str(p) for p in e["loc"]) or "pipeline": e["msg"]
                                 for e in exc.errors()}) from None

    def resolve(self, job_spec: Any = None) -> ResolvedPipeline:
        """Check the DAG and expand matrices. `job_spec(fields, template)` makes each step's JobSpec
        (default: `JobSpec(**fields)`; submission passes one that applies saved templates)."""
        errors: dict[str, str] = {}
        if not PIPELINE_NAME.match(self.name):
            errors["name"] = (f"{self.name!r} is not a valid pipeline name: letters, digits, '_', '.', '-', "
                              "at most 63")
        for name, step in self.steps.items():
            where = f"steps.{name}"
            if not STEP_NAME.match(name):
                errors[where] = f"{name!r} is not a valid step name: letters, digits, '_', '.', '-', at most 63"
            for need in step.needs:
                if need not in self.steps:
                    errors[f"{where}.needs"] = f"{need!r} is not a step of this pipeline (steps: {sorted(self.steps)})"
                elif need == name:
                    errors[f"{where}.needs"] = f"step {name!r} needs itself"
            for key, values in step.matrix.items():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or not values:
                    errors[f"{where}.matrix.{key}"] = "a matrix key is a name with a non-empty list of values"
        if not errors:
            cycle = _cycle(self.steps)
            if cycle:
                errors[f"steps.{cycle[0]}.needs"] = f"steps need each other in a cycle: {' -> '.join(cycle)}"
        if not errors:
            for name, step in self.steps.items():
                errors.update(self._check_inputs(name, step))
        if errors:
            raise PipelineError(errors)
        return self._expand(job_spec or (lambda fields, _template: JobSpec(**fields)))

    def _ancestors(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.steps[name].needs)
        while todo:
            need = todo.pop()
            if need not in seen:
                seen.add(need)
                todo.extend(self.steps[need].needs)
        return seen

    def _check_inputs(self, name: str, step: StepSpec) -> dict[str, str]:
        errors: dict[str, str] = {}
        where = f"steps.{name}.inputs_from"
        mounts: set[str] = set()
        for source, mount in step.inputs_from.items():
            path = PurePosixPath(mount)
            if source not in self.steps:
                errors[where] = f"{source!r} is not a step of this pipeline"
            elif source not in self._ancestors(name):
                errors[where] = f"{source!r} is not a step {name!r} needs (add it to needs: its output must exist)"
            elif not self.steps[source].job.get("output_dir") and not self.steps[source].template:
                errors[where] = f"step {source!r} has no output_dir: it leaves no folder to hand over"
            elif self.steps[source].matrix:
                errors[where] = f"step {source!r} is a matrix: hand over the output of one step, not of many"
            elif not path.is_absolute() or ".." in path.parts or str(path) == "/":
                errors[where] = f"{mount!r} must be an absolute folder in the container, not '/', without '..'"
            elif str(path) in mounts:
                errors[where] = f"two steps are mounted at {mount}"
            mounts.add(str(path))
        return errors

    def _expand(self, job_spec: Any) -> ResolvedPipeline:
        instances: dict[str, list[str]] = {}
        resolved: list[ResolvedStep] = []
        errors: dict[str, str] = {}
        for name in _order(self.steps):
            step = self.steps[name]
            combos = _combinations(step.matrix)
            instances[name] = []
            for combo in combos:
                full = f"{name}[{','.join(f'{k}={v}' for k, v in combo.items())}]" if combo else name
                where = f"steps.{name}"
                try:
                    fields = _substitute(step.job, combo, where)
                    job = job_spec(fields, step.template)
                except PipelineError as exc:
                    errors.update(exc.errors)
                    continue
                except (JobSpecError, ValidationError, ValueError, LookupError) as exc:
                    errors[where] = _why(exc)
                    continue
                instances[name].append(full)
                resolved.append(ResolvedStep(
                    name=full, group=name, needs=[i for need in step.needs for i in instances[need]],
                    when=step.when, inputs_from=dict(step.inputs_from), pool=step.pool or self.pool,
                    queue=step.queue, template=step.template, job=job))
        if errors:
            raise PipelineError(errors)
        if len(resolved) > MAX_STEPS:
            raise PipelineError({"steps": f"{len(resolved)} steps after matrix expansion: at most {MAX_STEPS}"})
        for step in resolved:
            source_outputs = [s for s in step.inputs_from if not self.steps_output_dir(resolved, s)]
            if source_outputs:
                raise PipelineError({f"steps.{step.group}.inputs_from":
                                     f"step {source_outputs[0]!r} has no output_dir: it leaves no folder to hand over"})
        return ResolvedPipeline(name=self.name, max_parallel=self.max_parallel, steps=resolved)

    @staticmethod
    def steps_output_dir(resolved: list[ResolvedStep], name: str) -> str | None:
        return next((s.job.output_dir for s in resolved if s.name == name), None)


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _cycle(steps: dict[str, StepSpec]) -> list[str] | None:
    """A cycle of `needs` as a path (a -> b -> a), or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        if state.get(name) == "done":
            return None
        if state.get(name) == "visiting":
            return [*path[path.index(name):], name]
        state[name] = "visiting"
        for need in steps[name].needs:
            if found := visit(need, [*path, name]):
                return found
        state[name] = "done"
        return None

    for name in steps:
        if found := visit(name, []):
            return found
    return None


def _order(steps: dict[str, StepSpec]) -> list[str]:
    """Steps with each after those it needs (the file's order otherwise); assumes no cycle."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for need in steps[name].needs:
            visit(need)
        order.append(name)

    for name in steps:
        visit(name)
    return order


def _combinations(matrix: dict[str, list[Any]]) -> list[dict[str, str]]:
    if not matrix:
        return [{}]
    keys = list(matrix)
    return [dict(zip(keys, (_text(v) for v in values), strict=True))
            for values in itertools.product(*(matrix[k] for k in keys))]


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _substitute(job: dict[str, Any], combo: dict[str, str], where: str) -> dict[str, Any]:
    """The job's fields with `${{ matrix.X }}` replaced in its command and env values."""

    def replace(text: str, field: str) -> str:
        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in combo:
                raise PipelineError({f"{where}.{field}": f"${{{{ matrix.{key} }}}}: the step has no matrix key "
                                     f"{key!r} (keys: {sorted(combo) or 'none'})"})
            return combo[key]
        return MATRIX_REF.sub(one, text)

    out = dict(job)
    command = job.get("command")
    if isinstance(command, str):
        out["command"] = replace(command, "command")
    elif isinstance(command, list):
        out["command"] = [replace(c, "command") if isinstance(c, str) else c for c in command]
    if isinstance(job.get("env"), dict):
        out["env"] = {k: replace(v, "env") if isinstance(v, str) else v for k, v in job["env"].items()}
    return out


def parse_pipeline(text: str | bytes) -> PipelineSpec:
    """A pipeline file's text (YAML, which includes JSON) as a `PipelineSpec`; PipelineError when not."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError({"pipeline": f"not valid YAML or JSON: {exc}"}) from None
    return PipelineSpec.from_data(data)


def load_pipeline(data: str | bytes | dict[str, Any] | PipelineSpec) -> PipelineSpec:
    """A PipelineSpec from a file's text, a dict (the JSON form) or itself."""
    if isinstance(data, PipelineSpec):
        return data
    if isinstance(data, dict):
        return PipelineSpec.from_data(json.loads(json.dumps(data)))
    return parse_pipeline(data)
