"""Job commands: submit, jobs, status, logs, result, files, cancel (locally, or through the API)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from swarmsync import jobs
from swarmsync.archive import ArchiveNotFound
from swarmsync.cli.target import LOCAL, job_backend
from swarmsync.spec import JobSpecError
from swarmsync.templates import TemplateNotFound
from swarmsync.timing import TimingError

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _job(job_id: str) -> jobs.Job:
    try:
        return job_backend().get_job(job_id)
    except jobs.JobNotFound as exc:
        raise _fail(str(exc)) from None


def _parse_env(pairs: list[str], what: str) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise _fail(f"{what} {pair!r} must be NAME=VALUE")
        env[name] = value
    return env


def follow(job: jobs.Job) -> int:
    """Print the job's container output as it streams; return its exit code."""
    with console.status(f"job {job.id}: {job.status()}") as status:
        for _ts, name, message in job.follow_logs():
            if name.startswith("prefect.flow_runs.std") or name == "prefect.flow_runs.marker":
                stream = sys.stderr if name.endswith("stderr") else sys.stdout
                print(message, file=stream, flush=True)
            status.update(f"job {job.id}: {job.status()}")
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


def _submit_specs(specs: list, pool: str | None, queue: str | None, **extra) -> int:
    """Submit at once; print each job id (or its error); exit 1 if any failed."""
    failed = 0
    for entry in job_backend().submit_many(specs, pool=pool, queue=queue, **extra):
        if entry.job:
            typer.echo(entry.job.id)
        else:
            failed += 1
            err.print(f"[red]job {entry.index} not submitted:[/red] {entry.error}")
    return 1 if failed else 0


def _submit_list(items: list, pool: str | None, queue: str | None) -> int:
    from swarmsync.spec import JobSpec

    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(JobSpec(**item))
        except (ValidationError, JobSpecError, TypeError) as exc:
            raise _fail(f"spec {index}: {exc}") from None
    return _submit_specs(specs, pool, queue)


def register(app: typer.Typer) -> None:  # noqa: C901 - one place for all job commands
    @app.command(context_settings={"allow_interspersed_args": False})
    def submit(
        image: str = typer.Argument(None, help="Image, e.g. busybox:1.36 (with --template: the command)"),
        command: list[str] = typer.Argument(None, help="Command and args (exec form)"),
        shell: str = typer.Option(None, "--shell", "-c", help="A shell string run with /bin/sh -c"),
        env: list[str] = typer.Option([], "--env", "-e", help="NAME=VALUE (repeatable)"),
        secret: list[str] = typer.Option([], "--secret", "-s", help="NAME=VALUE, masked, never archived"),
        memory: str = typer.Option(None, help="Memory limit, e.g. 256m"),
        cpu: float = typer.Option(None, help="CPU cores, e.g. 0.5"),
        pids_limit: int = typer.Option(None, help="Process limit"),
        timeout: float = typer.Option(None, help="Seconds before the job is stopped"),
        workdir: str = typer.Option(None, help="Working directory in the container"),
        output_dir: str = typer.Option(None, help="Folder in the container to archive"),
        input_file: list[str] = typer.Option([], "--input", help="LOCAL:/container/path[:SHA256]"),
        tag: list[str] = typer.Option([], "--tag", "-t", help="Tag (repeatable)"),
        retries: int = typer.Option(0, help="Retries when the job fails"),
        allow_exit: list[int] = typer.Option([], "--allow-exit", help="Exit codes that count as success"),
        pull: str = typer.Option(None, help="Pull policy: always, if-not-present, never"),
        spec_file: Path = typer.Option(
            None, "--spec", help="A JobSpec as JSON, or a JSON list of them (other options override)"
        ),
        pool: str = typer.Option(None, help="Work pool (default: SWARMSYNC_WORK_POOL)"),
        queue: str = typer.Option(None, help="Work queue within the pool"),
        count: int = typer.Option(1, min=1, help="Submit this many copies at once"),
        wait: bool = typer.Option(False, "--wait", "-w", help="Stream output; exit with the job's code"),
        template: str = typer.Option(None, "--template", "-T", help="A saved job template (options override it)"),
        at: str = typer.Option(None, "--at", help="Start at this ISO time, e.g. 2026-12-01T09:00+01:00"),
        delay: str = typer.Option(None, "--in", help="Start after this delay, e.g. 10m, 1h30m"),
    ) -> None:
        """Submit a container job; prints its id (with --wait: streams output, exits with its code)."""
        from swarmsync.spec import InputFile

        loaded = json.loads(spec_file.read_text()) if spec_file else {}
        if isinstance(loaded, list):
            raise typer.Exit(_submit_list(loaded, pool, queue))
        options = loaded
        if command and shell:
            raise _fail("give a command or --shell, not both")
        command = [c for i, c in enumerate(command or []) if not (i == 0 and c == "--")]
        if template and image:  # with a template, the positional words are the command
            command, image = [c for c in [image, *command] if c != "--"], None
        if not template and not image:
            raise _fail("give an IMAGE (or --template NAME)")
        if count > 1 and (at or delay):
            raise _fail("--count cannot be combined with --at/--in: submit delayed jobs one by one")
        cmd = shell or (list(command) if command else options.pop("command", None))
        options.update({k: v for k, v in {
            "memory": memory, "cpu": cpu, "pids_limit": pids_limit, "timeout": timeout,
            "working_dir": workdir, "output_dir": output_dir, "retries": retries or None,
            "pull_policy": pull, "allowed_exit_codes": allow_exit or None,
        }.items() if v is not None})
        if env:
            options["env"] = {**options.get("env", {}), **_parse_env(env, "--env")}
        if tag:
            options["tags"] = list(tag)
        inputs = []
        for item in input_file:
            local, _, rest = item.partition(":")
            target, _, digest = rest.partition(":")
            try:
                inputs.append(InputFile.from_bytes(target, Path(local).read_bytes(), digest or None))
            except OSError as exc:
                raise _fail(f"--input {item}: {exc}") from None
            except (ValidationError, JobSpecError) as exc:
                raise _fail(f"--input {item}: {exc}") from None
        if inputs:
            options["inputs"] = inputs
        if count > 1:
            backend, secret_env = job_backend(), _parse_env(secret, "--secret") or None
            try:
                if backend is LOCAL:  # secrets stored once, every copy refers to them
                    spec, extra = jobs.prepare_spec(image, cmd, secret_env, options, template), {}
                else:  # the template is read through the API; the server stores the secrets
                    spec, extra = backend.job_spec(image, cmd, template, **options), {"secret_env": secret_env}
            except (ValidationError, JobSpecError, LookupError) as exc:
                raise _fail(f"invalid job: {exc}") from None
            raise typer.Exit(_submit_specs([spec] * count, pool, queue, **extra))
        try:
            job = job_backend().submit(
                image, cmd, secret_env=_parse_env(secret, "--secret") or None, pool=pool, queue=queue,
                template=template, at=at, delay=delay, **options,
            )
        except TimingError as exc:
            raise _fail(str(exc)) from None
        except (ValidationError, JobSpecError) as exc:
            raise _fail(f"invalid job: {exc}") from None
        except (jobs.JobNotFound, TemplateNotFound) as exc:
            raise _fail(str(exc)) from None
        if at or delay:
            scheduled = job.flow_run().expected_start_time
            err.print(f"scheduled for {scheduled.astimezone():%Y-%m-%d %H:%M:%S %Z}; cancel with: "
                      f"swarmsync cancel {job.id}")
        if not wait:
            typer.echo(job.id)
            return
        err.print(f"job {job.id}")
        raise typer.Exit(follow(job))

    @app.command("jobs")
    def list_jobs(
        limit: int = typer.Option(20, help="How many"),
        state: str = typer.Option(None, help="Only jobs in this state, e.g. failed"),
        user: str = typer.Option(None, help="Only jobs this user submitted through the API"),
    ) -> None:
        """List jobs, newest first."""
        table = Table("state", "image", "command", "user", "created")
        table.add_column("id", no_wrap=True, min_width=36)
        for row in job_backend().list_jobs(limit=limit, state=state, user=user):
            table.add_row(
                row.state or "?", row.image or "?", row.command, row.user or "-",
                row.created.strftime("%Y-%m-%d %H:%M") if row.created else "", row.id,
            )
        console.print(table)

    @app.command()
    def status(job_id: str) -> None:
        """Show a job's state (and its result once finished)."""
        job = _job(job_id)
        run = job.flow_run()
        console.print(f"{job.id}: [bold]{run.state.name}[/bold] {run.state.message or ''}")
        if job.is_finished():
            try:
                result = job.result()
                console.print(f"exit code {result.exit_code}; archive {result.archive_location}")
            except ArchiveNotFound:
                pass

    @app.command()
    def logs(job_id: str, follow_: bool = typer.Option(False, "--follow", "-f")) -> None:
        """Print the job's run log (with --follow: until it ends)."""
        job = _job(job_id)
        entries = job.follow_logs() if follow_ else job.logs()
        for ts, name, message in entries:
            typer.echo(f"{ts:%H:%M:%S.%f}"[:-3] + f" {name.removeprefix('prefect.')}: {message}")

    @app.command()
    def result(
        job_id: str,
        output: Path = typer.Option(None, "-o", "--output", help="Write the .txt here"),
        stream: str = typer.Option("output", help="output (both), stdout or stderr"),
    ) -> None:
        """The job's archived output as .txt (to stdout, or -o FILE)."""
        if stream not in ("output", "stdout", "stderr"):
            raise _fail("--stream must be output, stdout or stderr")
        job = _job(job_id)
        try:
            data = job_backend().read_archive_file(job.id, f"{stream}.txt")
        except ArchiveNotFound as exc:
            raise _fail(f"{exc} (job is {job.status()})") from None
        if output:
            output.write_bytes(data)
            err.print(f"wrote {len(data)} bytes to {output}")
        else:
            sys.stdout.buffer.write(data)

    @app.command()
    def files(
        job_id: str,
        output: Path = typer.Option(..., "-o", "--output", help="Folder to extract into"),
    ) -> None:
        """Extract the job's archived output folder into a local folder."""
        job = _job(job_id)
        try:
            data = job_backend().read_archive_file(job.id, "files.tar.gz")
        except ArchiveNotFound as exc:
            raise _fail(f"{exc}: did the job set --output-dir?") from None
        output.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(output, filter="data")
        err.print(f"extracted into {output}")

    @app.command()
    def cancel(job_id: str) -> None:
        """Cancel a job: its container is stopped, partial output archived."""
        job = _job(job_id)
        if job.is_finished():
            raise _fail(f"job {job.id} already ended {job.status()}", 1)
        job.cancel()
        err.print(f"cancelling {job.id}")
