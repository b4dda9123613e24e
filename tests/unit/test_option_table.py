"""The CLI's options of the catalogue models are read from `swarmsync/cli/option_table.json`, not the models, so
that `submit` starts without pydantic (docs/benchmarks.md, CLI start). The file must say what the models say:
a field added or changed without rewriting it fails here, naming the command that rewrites it. And the commands
made from the file take the same options, with the same help, as those made from the models."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from swarmsync.cli import option_table
from swarmsync.cli.catalogue_options import CatalogueFields, OptionsOnFirstUse, catalogue_options

REWRITE = "python -m swarmsync.cli.option_table"


def test_the_stored_table_is_what_the_models_say() -> None:
    stored = json.loads(option_table.TABLE.read_text())
    derived = option_table.table()
    assert stored == derived, f"swarmsync/cli/option_table.json is out of date with the models: run `{REWRITE}`"
    assert option_table.TABLE.read_text() == option_table.dumps(derived), f"not as `{REWRITE}` writes it"


@pytest.mark.parametrize("model", option_table.MODELS)
def test_a_command_made_from_the_table_takes_what_one_made_from_the_model_takes(model: str) -> None:
    """The same options (flags, kinds, help) and the same values handed to the command."""
    seen: dict[str, dict] = {}

    def app_of(source: str | type) -> typer.Typer:
        app = typer.Typer(add_completion=False)

        @app.command("go", cls=OptionsOnFirstUse)  # the app's one command: run without its name
        @catalogue_options(source)
        def go(fields: CatalogueFields = None) -> None:
            seen[str(source)] = dict(fields or {})

        return app

    from_table, from_model = app_of(model), app_of(option_table.model_class(model))
    runner = CliRunner()
    helps = [runner.invoke(app, ["--help"], env={"COLUMNS": "250"}).output for app in (from_table, from_model)]
    assert helps[0] == helps[1] and {"swarmsync.spec:JobSpec": "--cpu", "swarmsync.policy:HostPolicy": "--max-memory"}[
        model] in helps[0]
    words = {"swarmsync.spec:JobSpec": ["--env", "A=1", "-e", "B=2", "--cpu", "0.5", "--tag", "x", "--tag", "y",
                                        "--allow-exit", "3", "--no-privileged", "--timeout", "9"],
             "swarmsync.policy:HostPolicy": ["--max-memory", "2g", "--allow-privileged"]}[model]
    for app in (from_table, from_model):
        done = runner.invoke(app, words)
        assert done.exit_code == 0, done.output
    assert seen[model] == seen[str(option_table.model_class(model))] and seen[model]


def test_a_model_not_in_the_table_has_its_options_made_from_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(option_table, "_stored", lambda: {})
    rows = option_table.rows("swarmsync.spec:JobSpec")
    assert [row.name for row in rows] == [row["name"] for row in option_table.table()["swarmsync.spec:JobSpec"]]
