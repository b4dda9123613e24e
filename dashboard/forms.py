"""What the dashboard's forms collect, turned into what the API takes, with an error per field.

Pure functions, no Streamlit and no API calls (those are in data.py): the submit form ->
a JobSpec (with uploaded input files and their SHA-256), and the pool policy form -> the
settings that changed. Validation is the core's own (JobSpec, InputFile); the API checks
everything again.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from swarmsync.client import HostPolicy, catalogue, dashboard_settings, load_compose, queue_for
from swarmsync.spec import InputFile, JobSpec, JobSpecError


# --- the submit form ---------------------------------------------------------------------
@dataclass
class Upload:
    """A file uploaded in the form, the path it gets in the container, and an optional
    SHA-256 the user expects it to have (checked before anything is submitted)."""

    key: str  # stable id of the upload (errors are keyed `input_path_KEY`, `input_sha256_KEY`)
    name: str
    data: bytes
    path: str = ""
    expected_sha256: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


# The JobSpec fields the page draws with widgets of their own; every other one it reaches
# (catalogue.EXCLUDED names those it does not) is a generated field: `FORM_FIELDS`.
OWN_WIDGETS = ("image", "command", "env", "tags", "inputs", "main_service")
FORM_FIELDS = {name: info for name, info in catalogue.fields(JobSpec, catalogue.DASHBOARD).items()
               if name not in OWN_WIDGETS}


@dataclass
class SubmitForm:
    """What the submit form collects, as text, before it becomes a JobSpec."""

    image: str = ""
    command: str = ""
    shell: bool = True
    env: str = ""  # NAME=value per line
    secret_env: str = ""  # NAME=value per line, stored as Prefect Secret blocks
    fields: dict[str, Any] = field(default_factory=dict)  # FORM_FIELDS: text (a checkbox's bool for a flag)
    tags: str = ""  # comma separated
    pool: str = ""
    queue: str = ""
    requires: str = ""  # host labels, comma separated: the job runs only on a host having every one
    at: datetime | None = None
    inputs: list[Upload] = field(default_factory=list)
    compose: str = ""  # a compose file: its main service is the job (image, command, env... come from it)
    main_service: str = ""


def _pairs(text: str, name: str, errors: dict[str, str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            errors[name] = f"line {number}: write NAME=value"
            return {}
        pairs[key.strip()] = value
    return pairs


def _number(text: str, name: str, errors: dict[str, str], kind: type = float) -> float | int | None:
    if not text.strip():
        return None
    try:
        return kind(text.strip())
    except ValueError:
        errors[name] = f"{text.strip()!r} is not a {'whole ' if kind is int else ''}number"
        return None


def max_upload_bytes() -> int:
    """Input files travel base64 in the API request (4/3 of their size), which has a size limit."""
    return dashboard_settings().max_body_bytes * 3 // 4 - 64 * 1024


def input_files(uploads: list[Upload], errors: dict[str, str]) -> list[InputFile]:
    """The uploads as JobSpec inputs with their SHA-256; a mismatch with the expected SHA-256,
    a bad or repeated path, or too many bytes is an error beside that upload's field."""
    files: list[InputFile] = []
    seen: set[str] = set()
    for upload in uploads:
        expected = upload.expected_sha256.strip().lower().removeprefix("sha256:")
        if expected and expected != upload.sha256:
            errors[f"input_sha256_{upload.key}"] = (
                f"{upload.name} has SHA-256 {upload.sha256}, not the expected {expected}: "
                "is it the right file, or did it change?")
            continue
        try:
            item = InputFile.from_bytes(upload.path.strip(), upload.data, upload.sha256)
        except (ValidationError, JobSpecError) as exc:
            errors[f"input_path_{upload.key}"] = _message(exc)
            continue
        if item.path in seen:
            errors[f"input_path_{upload.key}"] = f"{item.path} is already the path of another file"
            continue
        seen.add(item.path)
        files.append(item)
    total = sum(len(u.data) for u in uploads)
    if total > max_upload_bytes():
        errors["inputs"] = (f"the input files total {total} bytes; at most {max_upload_bytes()} bytes go "
                            "through the API (SWARMSYNC_MAX_BODY_BYTES): put bigger data in the image or a volume")
    return files


def form_value(name: str, raw: Any, errors: dict[str, str]) -> Any:
    """A generated field's form value as JobSpec takes it (None: left empty), by the field's kind."""
    kind = catalogue.kind(FORM_FIELDS[name])
    if kind == "flag":
        return True if raw else None
    text = str(raw or "").strip()
    if kind in ("number", "whole"):
        return _number(text, name, errors, int if kind == "whole" else float)
    if kind in ("texts", "numbers"):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        numbers = [_number(part, name, errors, int) for part in parts] if kind == "numbers" else parts
        return None if name in errors else numbers
    return text or None


def build_submission(form: SubmitForm) -> tuple[JobSpec | None, dict[str, str], dict[str, str]]:
    """(spec, secret values, errors by form field). Errors come from JobSpec's own validation."""
    errors: dict[str, str] = {}
    options: dict[str, Any] = {
        "env": _pairs(form.env, "env", errors),
        **{name: form_value(name, raw, errors) for name, raw in form.fields.items()},
        "tags": [t.strip() for t in form.tags.split(",") if t.strip()],
        "inputs": input_files(form.inputs, errors),
    }
    secrets = _pairs(form.secret_env, "secret_env", errors)
    if not form.image.strip():
        errors["image"] = "an image is required, e.g. busybox or ghcr.io/org/app:1.2"
    command: list[str] | str | None = form.command.strip() or None
    if command and not form.shell:
        try:
            command = shlex.split(command)
        except ValueError as exc:
            errors["command"] = f"cannot split the command: {exc}"
    if form.at is not None and form.at < datetime.now(UTC) - timedelta(minutes=1):
        errors["at"] = "the start time is in the past"
    if form.compose.strip():
        return _compose_submission(form, options, secrets, errors)
    try:
        spec = JobSpec(image=form.image.strip() or "x", command=command,
                       **{k: v for k, v in options.items() if v not in (None, [], {})})
    except (ValidationError, JobSpecError) as exc:
        errors.update(_field_errors(exc))
        spec = None
    return (None if errors else spec), secrets, errors


def target_queue(form: SubmitForm, errors: dict[str, str]) -> str:
    """The work queue to submit to: the one named, or the `host:` queue of the host labels the job
    requires (as `swarmsync submit --require`); an error under `requires` for bad labels or both."""
    labels = [label for label in form.requires.split(",") if label.strip()]
    if not labels:
        return form.queue.strip()
    if form.queue.strip():
        errors["requires"] = "give either a queue or the host labels the job requires, not both"
        return ""
    try:
        return queue_for(labels)
    except ValueError as exc:
        errors["requires"] = str(exc)
        return ""


# what the form adds to a compose file's job: the fields no Compose key sets
COMPOSE_OPTIONS = tuple(name for name in (*FORM_FIELDS, "tags", "inputs")
                        if not catalogue.reach(JobSpec.model_fields[name]).compose)


def _compose_submission(form: SubmitForm, options: dict[str, Any], secrets: dict[str, str],
                        errors: dict[str, str]) -> tuple[JobSpec | None, dict[str, str], dict[str, str]]:
    """A compose file's job: the main service's image, command, environment and limits; the form adds
    what no Compose key sets (COMPOSE_OPTIONS: the timeout, tags, output folder, input files, ...) and
    the secret."""
    errors.pop("image", None)
    if not form.main_service.strip():
        errors["main_service"] = "name the main service: the one whose exit ends the job"
        return None, secrets, errors
    extra = {k: options[k] for k in COMPOSE_OPTIONS if options.get(k) not in (None, [], {})}
    try:
        spec = load_compose(form.compose, form.main_service.strip(), **extra)
    except (ValidationError, JobSpecError) as exc:
        errors["compose"] = _message(exc)
        spec = None
    return (None if errors else spec), secrets, errors


def _message(exc: ValidationError | JobSpecError) -> str:
    if isinstance(exc, JobSpecError):
        return str(exc)
    return exc.errors()[0]["msg"].removeprefix("Value error, ")


def _field_errors(exc: ValidationError | JobSpecError) -> dict[str, str]:
    if isinstance(exc, JobSpecError):
        return {"image": str(exc)}
    out: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "image"
        out.setdefault(name, err["msg"].removeprefix("Value error, "))
    return out


# --- the pool policy form ----------------------------------------------------------------
# Every HostPolicy setting (from the catalogue: its label and kind), and the pool's own settings
POOL_SETTING_LABELS = {"pull_policy": "Pull policy", "docker_host": "Docker Host block",
                       "registry_credentials": "Registry Credentials block",
                       "archive_block": "Archive filesystem block (slug)"}
_POLICY_KINDS = {name: catalogue.kind(info) for name, info in HostPolicy.model_fields.items()}
POLICY_LABELS = {**{name: catalogue.label(name, info) + (" (comma separated)" if _POLICY_KINDS[name] == "texts" else "")
                    for name, info in HostPolicy.model_fields.items()}, **POOL_SETTING_LABELS}
POLICY_FLAGS = tuple(name for name, kind in _POLICY_KINDS.items() if kind == "flag")
POLICY_NUMBERS: dict[str, type] = {name: float if kind == "number" else int for name, kind in _POLICY_KINDS.items()
                                   if kind in ("number", "whole")}
POLICY_TEXTS = (*(name for name, kind in _POLICY_KINDS.items() if kind == "text"), *POOL_SETTING_LABELS)
POLICY_LISTS = tuple(name for name, kind in _POLICY_KINDS.items() if kind == "texts")


def policy_text(value: Any) -> str:
    """A policy value as the form shows it: empty for none, lists comma separated."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def policy_changes(current: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(the settings whose form value differs from `current`, errors by setting). Empty text
    clears a ceiling, a default or a block (None)."""
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        if name in POLICY_FLAGS:
            value: Any = bool(raw)
        elif name in POLICY_NUMBERS:
            value = _number(str(raw or ""), name, errors, POLICY_NUMBERS[name])
        elif name in POLICY_LISTS:
            value = [part.strip() for part in str(raw or "").split(",") if part.strip()]
        else:
            value = str(raw or "").strip() or None
        if name in errors:
            continue
        if name in POLICY_NUMBERS and current.get(name) is not None and value is not None:
            same = float(current[name]) == float(value)
        elif name in POLICY_TEXTS or name in POLICY_LISTS:  # None shown as empty: an empty field is no change
            same = policy_text(current.get(name)) == policy_text(value or None)
        else:
            same = current.get(name) == value
        if not same:
            changes[name] = value
    return changes, errors
