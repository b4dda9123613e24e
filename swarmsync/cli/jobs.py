"""Job commands: submit, jobs, status, logs, result, files, cancel, rerun, delete (locally, or through the API)."""

from __future__ import annotations

import json
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.markup import escape

from swarmsync.cli.catalogue_options import CatalogueFields, OptionsOnFirstUse, catalogue_options
from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.job_arguments import invalid_reason, parse_env, spec_errors, submit_errors
from swarmsync.cli.options import (
    AllProjects,
    Command,
    Pool,
    Project,
    Queue,
    Require,
    Secret,
    Shell,
    Template,
)
from swarmsync.cli.target import job_backend, project

if TYPE_CHECKING:
    from swarmsync.backend import JobBackend
    from swarmsync.job_handle import JobHandle
    from swarmsync.spec import JobSpec

# Prefect, the archive and templates are imported by the commands that use them: `--help` and commands that only
# talk to a SwarmSync API start without Prefect (docs/benchmarks.md, CLI start).

app = typer.Typer()


def follow(job: JobHandle) -> int:
    """Print the job's container output as it streams; return its exit code."""
    from swarmsync.archive import ArchiveNotFound

    with console.status(f"job {job.id}: {job.status()}") as status:
        shown, last = time.monotonic(), sys.stdout
        for _ts, name, message in job.follow_logs():  # a batch of lines per request, never one per line
            if name.startswith("prefect.flow_runs.std") or name == "prefect.flow_runs.marker":
                stream = sys.stderr if name.endswith("stderr") else sys.stdout
                if stream is not last:  # stdout and stderr stay in order when both go to one terminal
                    last.flush()
                    last = stream
                stream.write(message + "\n")
            elif name == "prefect.flow_runs" and message.startswith("Finished in state "):
                status.update(f"job {job.id}: {message.removeprefix('Finished in state ')}")
            if time.monotonic() - shown > 0.2:
                sys.stdout.flush()
                sys.stderr.flush()
                shown = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
    try:
        result = job.result()
    except ArchiveNotFound:
        err.print(f"job {job.id} ended {job.status()} without an archive")
        return 1
    if result.state != "COMPLETED":
        err.print(f"[red]job {result.state.lower()}[/red]: {result.message}")
    if result.exit_code is None:
        return 1
    return result.exit_code if result.state != "COMPLETED" or result.exit_code else 0


def _job(job_id: str) -> JobHandle:
    return job_backend().get_job(job_id)  # JobNotFound: exit 2 (console.EXIT_CODES)


def _state(backend: JobBackend, job_id: str) -> str:
    """The job's state now, as `Job.status()` says it (read again: it may have changed since)."""
    return backend.get_job_summary(job_id).state or "Unknown"


def _queue_with_requirements(queue: str | None, require: list[str] | None) -> str | None:
    """--require LABEL... as the queue of jobs needing those host labels (not with --queue)."""
    if not require:
        return queue
    if queue:
        fail("give --queue or --require, not both (--require picks the queue host:LABEL+...)")
    from swarmsync.routing import queue_for

    try:
        return queue_for(require)
    except ValueError as exc:
        fail(f"--require: {exc}")


def _submit_specs(specs: list[JobSpec], pool: str | None, queue: str | None, **extra: Any) -> int:
    """Submit at once; print each job id (or its error); exit 1 if any failed. `extra`: `project`, and
    through the API `secret_env`/`template`."""
    failed = 0
    for entry in job_backend().submit_many(specs, pool=pool, queue=queue, **extra):
        if entry.job:
            typer.echo(entry.job.id)
        else:
            failed += 1
            err.print(f"[red]job {entry.index} not submitted:[/red] {entry.error}")
    return 1 if failed else 0


def _submit_list(items: list, pool: str | None, queue: str | None, in_project: str | None) -> int:
    from swarmsync.spec import JobSpec

    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(JobSpec(**item))
        except (*spec_errors(), TypeError) as exc:
            fail(f"spec {index}: {invalid_reason(exc)}")
    return _submit_specs(specs, pool, queue, project=in_project)


def _submit_copies(count: int, image: str | None, command: list[str] | str | None, template: str | None,
                   secret_env: dict[str, str] | None, pool: str | None, queue: str | None,
                   options: dict[str, Any], in_project: str | None) -> int:
    """COUNT copies of one job, submitted at once."""
    from swarmsync.client import Client

    backend = job_backend()
    try:
        spec = backend.job_spec(image, command, template, project=in_project, **options)
        if not isinstance(backend, Client):  # LocalJobs: secrets stored once, every copy refers to them
            from swarmsync import jobs

            spec, extra = jobs.prepare_spec(spec, None, secret_env, {}, project=in_project), {}
        else:  # the server stores the secrets (and fills in the template's, hidden from this user)
            extra = {"secret_env": secret_env, "template": template}
    except (*spec_errors(), LookupError) as exc:
        fail(f"invalid job: {invalid_reason(exc)}")
    return _submit_specs([spec] * count, pool, queue, project=in_project, **extra)


def _compose_options(path: Path, main: str | None, image: str | None, spec_file: Path | None,
                     template: str | None) -> tuple[dict[str, Any], str]:
    """The JobSpec fields of a compose file (other options override the main service's), and its image."""
    from swarmsync.compose import load_compose

    if image or spec_file or template:
        fail("--compose replaces IMAGE, --spec and --template: give the command in the compose file")
    if not main:
        fail("--compose needs --main SERVICE: the service whose exit ends the job")
    try:
        spec = load_compose(path.read_text(), main)
    except OSError as exc:
        fail(f"--compose {path}: {exc}")
    except spec_errors() as exc:
        fail(f"--compose {path}: {invalid_reason(exc)}")
    options = spec.model_dump(mode="json", exclude_defaults=True)
    return options, options.pop("image")


@app.command(context_settings={"allow_interspersed_args": False}, cls=OptionsOnFirstUse)
@catalogue_options("swarmsync.spec:JobSpec")
def submit(
    image: Annotated[str | None, typer.Argument(help="Image, e.g. busybox:1.36 (with --template: the command)")] = None,
    command: Command = None,
    shell: Shell = None,
    secret: Secret = None,
    fields: CatalogueFields = None,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="A JobSpec as JSON, or a JSON list of them (other options override)")
    ] = None,
    pool: Pool = None,
    queue: Queue = None,
    require: Require = None,
    count: Annotated[int, typer.Option(min=1, help="Submit this many copies at once")] = 1,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Stream output; exit with the job's code")] = False,
    template: Template = None,
    at: Annotated[str | None, typer.Option("--at", help="Start at this ISO time, e.g. 2026-12-01T09:00+01:00")] = None,
    delay: Annotated[str | None, typer.Option("--in", help="Start after this delay, e.g. 10m, 1h30m")] = None,
    compose: Annotated[
        Path | None, typer.Option("--compose", help="A compose file: its --main service is the job, the others "
                                  "run beside it (docs/compose-jobs.md)")
    ] = None,
    main: Annotated[str | None, typer.Option("--main", help="With --compose: the main service")] = None,
    project_: Project = None,
) -> None:
    """Submit a container job; prints its id (with --wait: streams output, exits with its code)."""
    in_project = project(project_)
    queue = _queue_with_requirements(queue, require)
    loaded = json.loads(spec_file.read_text()) if spec_file else {}
    if compose:
        loaded, image = _compose_options(compose, main, image, spec_file, template)
    elif main:
        fail("--main goes with --compose")
    if isinstance(loaded, list):
        raise typer.Exit(_submit_list(loaded, pool, queue, in_project))
    options = loaded
    if command and shell:
        fail("give a command or --shell, not both")
    command = [c for i, c in enumerate(command or []) if not (i == 0 and c == "--")]
    if template and image:  # with a template, the positional words are the command
        command, image = [c for c in [image, *command] if c != "--"], None
    if not template and not image:
        fail("give an IMAGE (or --template NAME)")
    if count > 1 and (at or delay):
        fail("--count cannot be combined with --at/--in: submit delayed jobs one by one")
    cmd = shell or (list(command) if command else options.pop("command", None))
    fields = dict(fields or {})  # the JobSpec options given; they override the --spec file's
    if "env" in fields:
        fields["env"] = {**options.get("env", {}), **fields["env"]}
    options.update(fields)
    secret_env = parse_env(secret, "--secret") or None
    if count > 1:
        raise typer.Exit(_submit_copies(count, image, cmd, template, secret_env, pool, queue, options, in_project))
    try:
        job = job_backend().submit(
            image, cmd, secret_env=secret_env, pool=pool, queue=queue, template=template, at=at, delay=delay,
            project=in_project, **options,
        )
    except submit_errors() as exc:  # TimingError, JobNotFound, TemplateNotFound: exit 2
        fail(f"invalid job: {invalid_reason(exc)}")
    if at or delay:
        scheduled = job.scheduled
        err.print(f"scheduled for {scheduled.astimezone():%Y-%m-%d %H:%M:%S %Z}; cancel with: "
                  f"swarmsync cancel {job.id}")
    if not wait:
        typer.echo(job.id)
        return
    err.print(f"job {job.id}")
    raise typer.Exit(follow(job))


@app.command("jobs")
def list_jobs(
    limit: Annotated[int, typer.Option(help="How many")] = 20,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state, e.g. failed")] = None,
    user: Annotated[str | None, typer.Option(help="Only jobs this user submitted through the API")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (slower the deeper: prefer --after)")] = 0,
    after: Annotated[str | None, typer.Option(help="The next page: the cursor a full page ends with")] = None,
    project_: Project = None,
    all_projects: AllProjects = False,
) -> None:
    """List jobs, newest created first (of one project with --project); a full page ends with the command for
    the next one (on stderr)."""
    table = DataTable("state", "image", "command", "user", "project", "created")
    table.add_column("id", no_wrap=True, min_width=36)
    rows = job_backend().list_job_summaries(limit=limit, state=state, user=user, offset=offset,
                                            project=project(project_, all_projects), after=after)
    for row in rows:
        table.add_row(
            row.state or "?", row.image or "?", row.command, row.user or "-", row.project,
            row.created.strftime("%Y-%m-%d %H:%M") if row.created else "", row.id,
        )
    console.print(table)
    if rows.next_cursor:
        err.print(f"next page: swarmsync jobs --limit {limit} --after {rows.next_cursor}", soft_wrap=True)


@app.command()
def status(job_id: str) -> None:
    """Show a job's state (and its result once finished)."""
    from swarmsync.archive.errors import ArchiveNotFound

    backend = job_backend()
    row = backend.get_job_summary(job_id)  # JobNotFound: exit 2
    console.print(f"{row.id}: [bold]{escape(row.state or '')}[/bold] {escape(row.message or '')}")
    if row.final:
        try:
            result = backend.get_job_result(row.id)
            console.print(f"exit code {result.exit_code}; archive {result.archive_location}")
        except ArchiveNotFound:
            pass


@app.command()
def logs(job_id: str, follow_: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print the job's run log (with --follow: until it ends)."""
    entries = _job(job_id).follow_logs() if follow_ else job_backend().get_job_logs(job_id)
    for ts, name, message in entries:
        prefix = f"{ts:%H:%M:%S.%f}"[:-3] + f" {name.removeprefix('prefect.')}: "
        for line in message.split("\n"):  # lines logged together are one record: one printed line each
            sys.stdout.write(prefix + line + "\n")
    sys.stdout.flush()


@app.command()
def result(
    job_id: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the .txt here")] = None,
    stream: Annotated[str, typer.Option(help="output (both), stdout or stderr")] = "output",
    service: Annotated[str | None, typer.Option(help="A service of a job with services (--stream stdout or "
                                                     "stderr)")] = None,
) -> None:
    """The job's archived output as .txt (to stdout, or -o FILE)."""
    from swarmsync.archive.errors import ArchiveCorrupt, ArchiveNotFound, ArchiveStoreError

    if stream not in ("output", "stdout", "stderr"):
        fail("--stream must be output, stdout or stderr")
    if service and stream == "output":
        stream = "stdout"  # a service's output is archived as stdout and stderr
    backend = job_backend()
    job_id = backend.get_job_summary(job_id).id  # JobNotFound: exit 2
    try:
        name = f"services/{service}/{stream}.txt" if service else f"{stream}.txt"
        chunks = backend.iter_archive_file(job_id, name)
    except ArchiveNotFound as exc:
        fail(f"{exc} (job is {_state(backend, job_id)})")
    except (ArchiveCorrupt, ArchiveStoreError) as exc:
        fail(str(exc))
    if output:
        try:
            with open(output, "wb") as sink:
                size = _copy(chunks, sink)
        except (ArchiveCorrupt, ArchiveStoreError) as exc:
            output.unlink(missing_ok=True)  # a file that failed its check is not left behind
            fail(str(exc))
        err.print(f"wrote {size} bytes to {output} (SHA-256 checked)")
    else:
        try:
            _copy(chunks, sys.stdout.buffer)
        except (ArchiveCorrupt, ArchiveStoreError) as exc:
            fail(str(exc))


def _copy(chunks: Iterator[bytes], sink: BinaryIO) -> int:
    """Write a streamed download chunk by chunk (a large archive never sits in memory)."""
    size = 0
    for chunk in chunks:
        sink.write(chunk)
        size += len(chunk)
    sink.flush()
    return size


@app.command()
def files(
    job_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to extract into")],
) -> None:
    """Extract the job's archived output folder into a local folder."""
    from swarmsync.archive.errors import ArchiveCorrupt, ArchiveNotFound, ArchiveStoreError

    backend = job_backend()
    job_id = backend.get_job_summary(job_id).id  # JobNotFound: exit 2
    try:
        chunks = backend.iter_archive_file(job_id, "files.tar.gz")
    except ArchiveNotFound as exc:
        fail(f"{exc}: did the job set --output-dir?")
    except (ArchiveCorrupt, ArchiveStoreError) as exc:
        fail(str(exc))
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as spooled:  # streamed to disk and checked, then extracted from there
        try:
            _copy(chunks, spooled)
        except (ArchiveCorrupt, ArchiveStoreError) as exc:
            fail(str(exc))
        spooled.seek(0)
        with tarfile.open(fileobj=spooled, mode="r:gz") as tar:
            tar.extractall(output, filter="data")
    err.print(f"extracted into {output}")


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a job: its container is stopped, partial output archived."""
    backend = job_backend()  # by id, with no handle: through the API, no Prefect (docs/benchmarks.md, CLI start)
    job = backend.get_job_summary(job_id)
    if job.final:
        fail(f"job {job.id} already ended {job.state or 'Unknown'}", 1)
    backend.cancel_job(job.id)
    err.print(f"cancelling {job.id}")


@app.command()
def rerun(
    job_id: str,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Stream output; exit with the job's code")] = False,
) -> None:
    """Submit a job again, unchanged, in its project and pool; prints the new job's id."""
    job = _job(job_id).rerun()
    if not wait:
        typer.echo(job.id)
        return
    err.print(f"job {job.id}")
    raise typer.Exit(follow(job))


@app.command()
def delete(job_id: str) -> None:
    """Delete a finished job: its run, its archive and its Secret blocks (cancel a running one first)."""
    backend = job_backend()
    job = backend.get_job_summary(job_id)
    if not job.final:
        fail(f"job {job.id} is {job.state or 'Unknown'}: cancel it first ('swarmsync cancel {job.id}')", 1)
    backend.delete_job(job.id)
    err.print(f"deleted {job.id}")
