"""`swarmsync pipeline ...`: run a pipeline file, follow it step by step, cancel, resume, schedule.

Here (the server host: Prefect directly, `swarmsync.pipelines`) or through the SwarmSync API (a stored
login or SWARMSYNC_URL: `swarmsync.Client`), as the job commands; both answer in the shape of
`GET /pipelines/{id}`.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.job_arguments import input_errors
from swarmsync.cli.options import ScheduleName
from swarmsync.cli.pipeline_schedules import pipeline_schedules
from swarmsync.cli.target import client, project
from swarmsync.client import remote_configured
from swarmsync.timing import start_time

if TYPE_CHECKING:
    from swarmsync.jobs import Job

# swarmsync.pipelines and the job handles (Prefect) are imported by the commands that use them (CLI start).

app = typer.Typer(no_args_is_help=True, help="Pipelines: container jobs that depend on each other (docs/pipelines.md).")
ProjectOption = Annotated[str | None, typer.Option("--project", "-P", help="The project (default: your current one)")]


class LocalPipelines:
    """`swarmsync.pipelines` on the server host."""

    def submit(self, data: dict[str, Any], in_project: str | None, at: datetime | None) -> dict[str, Any]:
        from swarmsync import pipelines

        return pipelines.submit_pipeline(data, project=in_project, at=at).describe()

    def view(self, pipeline_id: str) -> dict[str, Any]:
        from swarmsync import pipelines

        return pipelines.get_pipeline(pipeline_id).describe()

    def list(self, in_project: str | None) -> list[dict[str, Any]]:
        from swarmsync import pipelines

        return [p.describe(with_steps=False)
                for p in pipelines.list_pipelines(projects=[in_project] if in_project else None)]

    def change(self, pipeline_id: str, action: str) -> dict[str, Any]:
        from swarmsync import pipelines

        pipeline = pipelines.get_pipeline(pipeline_id)
        if action == "cancel":
            if pipeline.is_finished():
                fail(f"pipeline {pipeline.id} already ended {pipeline.status()}")
            pipeline.cancel()
        else:
            pipeline.resume()  # PipelineConflict: exit 2 (console.EXIT_CODES)
        return pipeline.describe()

    def job(self, job_id: str) -> Job:
        from swarmsync.jobs import Job

        return Job(job_id)


class RemotePipelines:
    """The SwarmSync API's `/pipelines`."""

    def __init__(self) -> None:
        self.api = client()

    def submit(self, data: dict[str, Any], in_project: str | None, at: datetime | None) -> dict[str, Any]:
        return self.api.submit_pipeline(data, project=in_project, at=at)

    def view(self, pipeline_id: str) -> dict[str, Any]:
        return self.api.pipeline(pipeline_id)

    def list(self, in_project: str | None) -> list[dict[str, Any]]:
        return self.api.pipelines(project=in_project)

    def change(self, pipeline_id: str, action: str) -> dict[str, Any]:
        return self.api.change_pipeline(pipeline_id, action)

    def job(self, job_id: str) -> Job:
        from swarmsync.remote_jobs import RemoteJob

        return RemoteJob(self.api, self.api.request("GET", f"/jobs/{job_id}").json())


def backend() -> LocalPipelines | RemotePipelines:
    return RemotePipelines() if remote_configured() else LocalPipelines()


def _read_file(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc}")
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML or JSON: {exc}")
    if not isinstance(data, dict):
        fail(f"{path}: a pipeline file is a mapping with name and steps")
    return data


def follow(target: LocalPipelines | RemotePipelines, pipeline_id: str, poll: float = 1.0) -> int:
    """Print every step's output lines as they come, each prefixed with `[step]`, and each step's end;
    return 0 when the pipeline completed, 1 otherwise."""
    since: dict[str, datetime | None] = {}
    seen: set[str] = set()
    ended: set[tuple[str, str | None]] = set()
    jobs: dict[str, Job] = {}
    while True:
        view = target.view(pipeline_id)
        for step in view["steps"]:
            name, job_id = step["name"], step.get("job_id")
            if job_id:
                job = jobs.setdefault(job_id, target.job(job_id))
                for entry in job.log_batch(since.get(job_id)):
                    if entry.id in seen:
                        continue
                    seen.add(entry.id)
                    since[job_id] = entry.timestamp
                    if entry.name.startswith("prefect.flow_runs.std"):
                        stream = sys.stderr if entry.name.endswith("stderr") else sys.stdout
                        stream.write(f"[{name}] {entry.message}\n")
            if step["state"] in ("Completed", "Failed", "Crashed", "Cancelled", "Skipped", "TimedOut") and (
                    (name, step.get("job_id")) not in ended):
                ended.add((name, step.get("job_id")))
                sys.stdout.flush()
                err.print(f"[{name}] {step['state']}" + (f": {step['message']}" if step.get("message") and
                                                          step["state"] != "Completed" else ""),
                          markup=False, highlight=False, soft_wrap=True)
        sys.stdout.flush()
        if view["final"]:
            err.print(f"pipeline {view['name']} ({pipeline_id}) {view['state']}: {view.get('message') or ''}",
                      markup=False, soft_wrap=True)
            return 0 if view["state"] == "Completed" else 1
        time.sleep(poll)


def _show(view: dict[str, Any]) -> None:
    console.print(f"pipeline {view['name']} ({view['id']}): {view['state']}"
                  + (f" - {view['message']}" if view.get("message") else ""), markup=False, soft_wrap=True)
    table = DataTable("step", "state", "needs", "when", "job", "attempts")
    for step in view["steps"]:
        table.add_row(step["name"], step["state"], ", ".join(step["needs"]), step["when"],
                      step.get("job_id") or "", str(step.get("attempts") or 0))
    console.print(table)


@app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="The pipeline file (YAML or JSON)")],
    wait: Annotated[bool, typer.Option("--wait", help="Stream every step's lines ([step] ...) until it ends; "
                                       "exit 0 when it completed, 1 otherwise")] = False,
    in_: Annotated[str | None, typer.Option("--in", help="Start later: 90s, 10m, 1h30m")] = None,
    in_project: ProjectOption = None,
) -> None:
    """Submit a pipeline: checked whole (cycles, unknown steps, bad inputs_from) and every step admitted
    before anything runs; prints its id."""
    from swarmsync.pipeline_spec import PipelineError

    target = backend()
    try:
        view = target.submit(_read_file(file), project(in_project), start_time(None, in_) if in_ else None)
    except PipelineError as exc:
        fail(f"pipeline refused: {exc}")
    print(view["id"])
    if wait:
        raise typer.Exit(follow(target, view["id"]))


@app.command("status")
def status(pipeline_id: str) -> None:
    """The pipeline's state and each step's."""
    _show(backend().view(pipeline_id))


@app.command("list")
def list_pipelines(in_project: ProjectOption = None) -> None:
    """Pipelines, newest first."""
    table = DataTable("id", "name", "state", "user", "project", "created")
    for view in backend().list(project(in_project)):
        table.add_row(view["id"], view["name"], view["state"] or "", view.get("user") or "", view["project"],
                      str(view.get("created") or "")[:19])
    console.print(table)


@app.command("logs")
def logs(pipeline_id: str, follow_: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Every step's output lines, prefixed with the step's name (with --follow: until the pipeline ends)."""
    target = backend()
    if follow_:
        raise typer.Exit(follow(target, pipeline_id))
    for step in target.view(pipeline_id)["steps"]:
        if step.get("job_id"):
            for _ts, name, message in target.job(step["job_id"]).logs():
                if name.startswith("prefect.flow_runs.std"):
                    sys.stdout.write(f"[{step['name']}] {message}\n")
    sys.stdout.flush()


@app.command("cancel")
def cancel(pipeline_id: str) -> None:
    """Cancel the pipeline and its running steps."""
    view = backend().change(pipeline_id, "cancel")
    console.print(f"pipeline {view['id']}: {view['state']}")


@app.command("resume")
def resume(pipeline_id: str, wait: Annotated[bool, typer.Option("--wait")] = False) -> None:
    """Run the failed and skipped steps again; the succeeded ones (and their outputs) are reused."""
    target = backend()
    view = target.change(pipeline_id, "resume")
    console.print(f"pipeline {view['id']}: {view['state']}")
    if wait:
        raise typer.Exit(follow(target, pipeline_id))


@app.command("schedule")
def schedule(
    name: ScheduleName,
    file: Annotated[Path, typer.Argument(help="The pipeline file (YAML or JSON)")],
    every: Annotated[str | None, typer.Option(help="Interval: 90s, 10m, 1h")] = None,
    cron: Annotated[str | None, typer.Option(help="Cron expression")] = None,
    timezone: Annotated[str | None, typer.Option(help="Time zone of the cron expression")] = None,
    in_project: ProjectOption = None,
) -> None:
    """Run the pipeline on a schedule (--every or --cron): the deployment `pipeline/NAME` on Core's pipeline
    pool. Through the API (a login or SWARMSYNC_URL) every step is admitted for you; each run's steps are
    checked again by the worker under the schedule's owner."""
    from swarmsync.pipeline_spec import PipelineError

    with input_errors():
        try:
            made = pipeline_schedules().create(name, _read_file(file), every=every, cron=cron, timezone=timezone,
                                               project=project(in_project))
        except PipelineError as exc:
            fail(f"pipeline refused: {exc}")
    console.print(f"{made['deployment']}: {', '.join(made['schedules'])}", markup=False, soft_wrap=True)


@app.command("unschedule")
def unschedule(name: str, in_project: ProjectOption = None) -> None:
    """Delete a pipeline schedule (its past runs stay)."""
    with input_errors():
        pipeline_schedules().delete(name, project(in_project))
    console.print(f"pipeline schedule {name} deleted")
