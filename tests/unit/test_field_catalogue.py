"""The field catalogue (swarmsync/catalogue.py): every field of JobSpec and HostPolicy is reachable
from the CLI, the API, Python, the dashboard and Compose, or named in `catalogue.EXCLUDED` with its
reason. A field added to either model without a way in fails here, naming the field and the way."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import click
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

import swarmsync
from swarmsync import catalogue
from swarmsync.api import schemas
from swarmsync.auth.secret_owners import FREE_FIELDS
from swarmsync.blocks.job_template import JobTemplate
from swarmsync.cli.catalogue_options import CatalogueFields, catalogue_options
from swarmsync.cli.main import app
from swarmsync.client import Client
from swarmsync.compose import COMPOSE_FIELDS, load_compose
from swarmsync.dashboard import forms
from swarmsync.deployments import schedules
from swarmsync.deployments.pools import POLICY_FIELDS
from swarmsync.jobs import build_spec
from swarmsync.policy import HostPolicy
from swarmsync.spec import JobSpec
from swarmsync.templates import _TEMPLATE_FIELDS, save_template

JOB_FIELDS = list(JobSpec.model_fields)
POLICY = list(HostPolicy.model_fields)
JOB_COMMANDS = (("submit",), ("schedule", "create"), ("template", "save"))


@functools.cache
def _command(*path: str) -> click.Command:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@functools.cache
def _params(*path: str) -> set[str]:
    return {p.name for p in _command(*path).params}


@pytest.mark.parametrize("path", JOB_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("field", JOB_FIELDS)
def test_every_job_field_is_an_option_of_submit_schedule_create_and_template_save(path, field):
    if catalogue.excluded(JobSpec, field, catalogue.CLI):
        assert field not in _params(*path)
        return
    assert field in _params(*path), f"`swarmsync {' '.join(path)}` has no option for JobSpec.{field}: give it a " \
        "CLI-readable type, or name it in catalogue.EXCLUDED with the reason"


@pytest.mark.parametrize("field", POLICY)
def test_every_policy_setting_is_an_option_of_pool_create(field):
    assert field in _params("pool", "create")


def test_the_api_takes_a_whole_jobspec_and_every_policy_setting():
    assert schemas.JobSubmission.model_fields["spec"].annotation is JobSpec
    assert schemas.TemplateCreate.model_fields["spec"].annotation is JobSpec
    assert JobSpec in getattr(schemas.ScheduleCreate.model_fields["spec"].annotation, "__args__", ())
    for model in (schemas.PolicyUpdate, schemas.PolicyOut):
        assert set(POLICY) <= set(model.model_fields), model.__name__
        assert set(model.model_fields) == set(POLICY_FIELDS), model.__name__  # and the pool's own settings
    assert schemas.PolicyUpdate(max_output_bytes="500m", max_gpus=2).max_output_bytes == 500 << 20


@pytest.mark.parametrize("field", [f for f in JOB_FIELDS if f not in ("image", "command")])
def test_every_job_field_is_a_keyword_of_the_python_api(field):
    """`swarmsync.submit(image, command, **options)` builds the JobSpec from its options; a keyword of submit's
    own of the same name would take the field's place (`user`: excluded, with the way round)."""
    value = JobSpec.model_fields[field].get_default(call_default_factory=True)
    assert field in build_spec("busybox", None, **{field: value}).model_fields_set
    own = {name for name, p in inspect.signature(swarmsync.submit).parameters.items() if p.kind == p.KEYWORD_ONLY}
    assert (field in own) == bool(catalogue.excluded(JobSpec, field, catalogue.PYTHON)), \
        f"swarmsync.submit's own `{field}=` hides JobSpec.{field}"
    for method in (Client.submit, schedules.create, save_template):  # the other ways take every field
        assert field not in inspect.signature(method).parameters, f"{method.__qualname__} hides JobSpec.{field}"


@pytest.mark.parametrize("field", JOB_FIELDS)
def test_every_job_field_is_on_the_dashboards_submit_form(field):
    if catalogue.excluded(JobSpec, field, catalogue.DASHBOARD):
        assert field not in forms.FORM_FIELDS
        return
    assert field in forms.OWN_WIDGETS or field in forms.FORM_FIELDS, f"JobSpec.{field} is not on the submit form"
    if field in forms.FORM_FIELDS:  # a kind the form can read
        assert catalogue.kind(forms.FORM_FIELDS[field]) in ("flag", "number", "whole", "text", "texts", "numbers")


@pytest.mark.parametrize("field", POLICY)
def test_every_policy_setting_is_on_the_dashboards_pool_form(field):
    kinds = [forms.POLICY_FLAGS, forms.POLICY_NUMBERS, forms.POLICY_TEXTS, forms.POLICY_LISTS]
    assert field in forms.POLICY_LABELS and sum(field in kind for kind in kinds) == 1


COMPOSE = """
services:
  db: {image: busybox, command: sleep 60}
  app: {image: busybox, command: echo hi, depends_on: [db]}
"""


@pytest.mark.parametrize("field", JOB_FIELDS)
def test_every_job_field_is_set_by_a_compose_file_or_beside_it(field):
    """A Compose key sets it, or the compose file makes it (services), or it is an option given beside the file
    (`submit --compose F --gpus 1`, the form's fields next to its compose file)."""
    if catalogue.excluded(JobSpec, field, catalogue.COMPOSE):
        return
    from_file = set(COMPOSE_FIELDS.values()) | load_compose(COMPOSE, "app").model_fields_set
    beside = field in forms.COMPOSE_OPTIONS and not catalogue.excluded(JobSpec, field, catalogue.CLI)
    assert field in from_file or beside, f"JobSpec.{field} cannot be set with a compose file"


def test_a_template_keeps_every_job_field():
    """The block's own fields are JobSpec fields; every other one is kept in its `options`."""
    assert _TEMPLATE_FIELDS == JobTemplate.spec_columns() <= set(JOB_FIELDS)
    spec = JobSpec(image="busybox", command="echo hi", gpus=1, user="1000", retries=2, memory="64m")
    data = spec.model_dump(mode="json", exclude_defaults=True)
    template = JobTemplate(**{k: v for k, v in data.items() if k in _TEMPLATE_FIELDS},
                           options={k: v for k, v in data.items() if k not in _TEMPLATE_FIELDS})
    assert JobSpec(**template.job_fields()) == spec


def test_only_fields_marked_free_may_differ_from_a_template_with_its_secrets():
    assert FREE_FIELDS == catalogue.free_fields(JobSpec)
    assert {"image", "command", "entrypoint", "env", "secrets", "inputs", "user", "privileged", "gpus",
            "network", "services"}.isdisjoint(FREE_FIELDS)


def test_every_exclusion_names_a_field_a_way_in_and_its_reason():
    models = {"JobSpec": JobSpec, "HostPolicy": HostPolicy}
    for (model, field), ways in catalogue.EXCLUDED.items():
        assert field in models[model].model_fields, f"{model}.{field} is excluded but does not exist"
        for way, reason in ways.items():
            assert way in (catalogue.CLI, catalogue.DASHBOARD, catalogue.COMPOSE, catalogue.PYTHON)
            assert len(reason) > 20


def test_the_generated_options_hand_the_command_the_fields_as_jobspec_takes_them(tmp_path):
    captured: dict[str, Any] = {}
    cli = typer.Typer()

    @cli.command()
    @catalogue_options(JobSpec)
    def run(image: str, fields: CatalogueFields = None) -> None:
        captured.update(fields or {})

    (tmp_path / "x.csv").write_text("a,b\n")
    result = CliRunner().invoke(cli, ["busybox", "--gpus", "2", "-e", "A=1", "--tag", "x", "--allow-exit", "0",
                                      "--allow-exit", "3", "--privileged", "--memory", "64m",
                                      "--input", f"{tmp_path / 'x.csv'}:/in/x.csv"])
    assert result.exit_code == 0, result.output
    spec = JobSpec(image="busybox", **captured)
    assert (spec.gpus, spec.env, spec.tags, spec.allowed_exit_codes) == (2, {"A": "1"}, ["x"], [0, 3])
    assert spec.privileged and spec.memory == "64m" and spec.inputs[0].path == "/in/x.csv"
    assert set(captured) == {"gpus", "env", "tags", "allowed_exit_codes", "privileged", "memory", "inputs"}


def test_a_field_no_option_can_take_must_be_excluded_by_name():
    class Odd(JobSpec):
        weights: dict[str, int] = {}

    with pytest.raises(TypeError, match="weights.*catalogue.EXCLUDED"):
        catalogue_options(Odd)(lambda fields=None: None)


def test_generated_options_keep_the_commands_own_parameters_in_place():
    parameters = list(inspect.signature(_command("submit").callback).parameters)
    assert parameters[:4] == ["image", "command", "shell", "secret"]
    assert parameters.index("gpus") < parameters.index("spec_file") and "fields" not in parameters
