"""`swarmsync template ...`: saved jobs (Prefect blocks). They call `swarmsync.templates` on
the server host, or the SwarmSync API's /templates when SWARMSYNC_URL is set or `swarmsync
login` stored one (see `target.hibernator`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmsync.cli.catalogue_options import CatalogueFields, OptionsOnFirstUse, catalogue_options
from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.job_arguments import command_from, input_errors, parse_env
from swarmsync.cli.options import (
    AllProjects,
    Command,
    Project,
    Secret,
    Shell,
)
from swarmsync.cli.target import hibernator, project

app = typer.Typer(no_args_is_help=True, help="Saved job templates (Prefect blocks).")


@app.command("save", cls=OptionsOnFirstUse)
@catalogue_options("swarmsync.spec:JobSpec")
def save(
    name: Annotated[str, typer.Argument(help="Template name: lowercase letters, digits, dashes")],
    image: Annotated[str | None, typer.Argument(help="Image (not with --compose)")] = None,
    command: Command = None,
    shell: Shell = None,
    secret: Secret = None,
    fields: CatalogueFields = None,
    compose: Annotated[Path | None, typer.Option("--compose", help="A compose file (docs/compose-jobs.md)")] = None,
    main: Annotated[str | None, typer.Option("--main", help="With --compose: the main service")] = None,
    project_: Project = None,
) -> None:
    """Save (or replace) a job template, shown in the Prefect UI as a block."""
    options = dict(fields or {})
    with input_errors():
        if compose:
            if image or not main:
                fail("--compose takes --main SERVICE and no IMAGE")
            from swarmsync.compose import load_compose

            spec = load_compose(compose.read_text(), main).model_dump(mode="json", exclude_defaults=True)
            image, from_file = spec.pop("image"), spec.pop("command", None)
            command = command or from_file
            options = {**spec, **options, "env": {**spec.get("env", {}), **options.get("env", {})}}
        elif not image:
            fail("give an IMAGE (or --compose FILE --main SERVICE)")
        in_project = project(project_)
        hibernator().save_template(
            name, image, command_from(command, shell), secret_env=parse_env(secret, "--secret") or None,
            project=in_project, **options,
        )
    where = f" --project {in_project}" if in_project else ""
    err.print(f"saved template {name}; use it with: swarmsync submit{where} --template {name}")


@app.command("list")
def list_templates(project_: Project = None, all_projects: AllProjects = False) -> None:
    """List saved job templates (of one project with --project)."""
    saved = hibernator().list_templates(project(project_, all_projects))
    table = DataTable()
    longest = max((len(fields.get("name") or stored) for stored, fields in saved.items()), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)  # whole, whatever the terminal's width
    for column in ("project", "owner", "image", "command", "env", "secrets"):
        table.add_column(column)
    for stored, fields in sorted(saved.items(), key=lambda item: (item[1].get("project") or "", item[0])):
        command = fields.get("command")
        command = command if isinstance(command, str) else " ".join(command or [])
        table.add_row(fields.get("name") or stored, fields.get("project") or "default", fields.get("owner") or "-",
                      fields.get("image", "?"), command, ", ".join(fields.get("env") or {}),
                      ", ".join(fields.get("secrets") or {}))
    console.print(table)


@app.command("delete")
def delete(name: str, project_: Project = None) -> None:
    """Delete a template and the Secret blocks it made."""
    with input_errors():
        hibernator().delete_template(name, project(project_))
    err.print(f"deleted template {name}")
