"""Compose files as JobSpecs: the subset of the Compose format a SwarmSync job supports, mapped
to `JobSpec.services` plus the main container. Anything else is refused by name (never ignored):

    >>> spec = load_compose('''
    ... services:
    ...   web: {image: busybox, command: httpd -f -p 8080}
    ...   app: {image: busybox, command: [wget, -qO-, http://web:8080/], depends_on: [web]}
    ... ''', main="app")
    >>> spec.image, spec.command, spec.depends_on, spec.services["web"].command
    ('busybox', ['wget', '-qO-', 'http://web:8080/'], {'web': 'service_started'}, ['httpd', '-f', '-p', '8080'])
    >>> load_compose("services: {app: {image: busybox, ports: ['80:80']}}", main="app")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    swarmsync.compose.ComposeError: services.app.ports is not supported in a SwarmSync compose job ...

Supported per service: image, command, entrypoint, environment, working_dir, user, healthcheck
(test, interval, timeout, retries, start_period), depends_on (a list, or conditions
service_started / service_healthy / service_completed_successfully), cpus, mem_limit, pids_limit,
deploy.resources.limits (cpus, memory, pids), privileged, and `x-swarmsync-allow-exit` (a service
that may exit on its own). Top level: services, plus `name` and `version`, which are accepted and
have no effect (Compose itself ignores `version`). Strings in command and entrypoint are split as
Compose splits them (no shell); use `sh -c '...'` for a shell.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from swarmsync import catalogue
from swarmsync.spec import HealthCheck, JobSpec, JobSpecError, ServiceSpec

# Compose key -> the JobSpec (or ServiceSpec) field it sets: declared on the field (`Reach.compose`)
COMPOSE_FIELDS = {**catalogue.compose_keys(JobSpec), **catalogue.compose_keys(ServiceSpec)}
ALLOW_EXIT_KEY = next(key for key, field in COMPOSE_FIELDS.items() if field == "allow_exit")
TOP_LEVEL = {"services", "name", "version"}
SERVICE_KEYS = {*COMPOSE_FIELDS, "deploy"}
MAIN_ONLY_REFUSED = {key for key, field in COMPOSE_FIELDS.items() if field not in JobSpec.model_fields}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}
DEPENDS_KEYS = {"condition"}
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
LIMIT_KEYS = {"cpus": "cpu", "memory": "memory", "pids": "pids_limit"}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ComposeError(JobSpecError):
    """A compose file SwarmSync cannot run as a job; the message names the key."""


def _refuse_unknown(data: dict, allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ComposeError(f"{where}{key} is not supported in a SwarmSync compose job "
                               f"(supported here: {', '.join(sorted(allowed))})")


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ComposeError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _bool(value: Any, where: str) -> bool:
    """A Compose boolean: YAML true or false only (a quoted 'false' is a string, and truthy)."""
    if not isinstance(value, bool):
        raise ComposeError(f"{where} must be true or false, got {value!r} ({type(value).__name__})")
    return value


def _int(value: Any, where: str) -> int:
    """A whole number, never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ComposeError(f"{where} must be a whole number, got {value!r} ({type(value).__name__})")
    return value


def _cpus(value: Any, where: str) -> float:
    """Compose's cpus: a number, or a string holding only a decimal number ('0.5')."""
    if isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ComposeError(f"{where} must be a number of cores (e.g. 0.5), got {value!r} ({type(value).__name__})")
    return float(value)


def _memory(value: Any, where: str) -> str:
    """A memory size: a string ('256m') or a number of bytes, never a boolean."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ComposeError(f"{where} must be a size such as '256m' or a number of bytes, got {value!r}")
    return str(value)


def parse_duration(value: Any, where: str) -> float:
    """Compose durations: '1m30s', '500ms', '10s', or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeError(f"{where}: {value!r} is not a duration (e.g. '10s', '1m30s', '500ms')")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _words(value: Any, where: str) -> list[str] | None:
    """A Compose command/entrypoint: a list as is; a string split as Compose splits it (no shell)."""
    if value is None:
        return None
    if isinstance(value, str):
        words = shlex.split(value)
        if not words:
            raise ComposeError(f"{where} is empty")
        return words
    if isinstance(value, list) and value and all(isinstance(w, str | int | float) for w in value):
        return [str(w) for w in value]
    raise ComposeError(f"{where} must be a string or a non-empty list of strings")


def _environment(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        items = {}
        for entry in value:
            name, eq, val = str(entry).partition("=")
            items[name] = val if eq else None
        value = items
    env = {}
    for name, val in _mapping(value, where).items():
        if val is None:
            raise ComposeError(f"{where}.{name} has no value: taking it from the submitter's environment "
                               "is not supported (give the value, or use a SwarmSync secret)")
        env[str(name)] = str(val).lower() if isinstance(val, bool) else str(val)
    return env


def _healthcheck(value: Any, where: str) -> HealthCheck:
    data = _mapping(value, where)
    _refuse_unknown(data, HEALTHCHECK_KEYS, f"{where}.")
    if "test" not in data:
        raise ComposeError(f"{where}.test is missing")
    test = data["test"]
    if isinstance(test, list) and test[:1] == ["NONE"]:
        raise ComposeError(f"{where}.test NONE is not supported: leave the healthcheck out")
    fields: dict[str, Any] = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        if key in data:
            fields[key] = parse_duration(data[key], f"{where}.{key}")
    if "retries" in data:
        fields["retries"] = _int(data["retries"], f"{where}.retries")
    return HealthCheck(**fields)


def _depends_on(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, list):
        return {str(name): "service_started" for name in value}
    deps = {}
    for name, options in _mapping(value, where).items():
        options = _mapping(options or {}, f"{where}.{name}")
        _refuse_unknown(options, DEPENDS_KEYS, f"{where}.{name}.")
        condition = options.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise ComposeError(f"{where}.{name}.condition {condition!r} is not one of {', '.join(CONDITIONS)}")
        deps[str(name)] = condition
    return deps


def _deploy_limits(value: Any, where: str) -> dict[str, Any]:
    """deploy.resources.limits (cpus, memory, pids) as the fields they set."""
    deploy = _mapping(value, f"{where}deploy")
    _refuse_unknown(deploy, {"resources"}, f"{where}deploy.")
    resources = _mapping(deploy["resources"], f"{where}deploy.resources")
    _refuse_unknown(resources, {"limits"}, f"{where}deploy.resources.")
    limits = _mapping(resources["limits"], f"{where}deploy.resources.limits")
    _refuse_unknown(limits, set(LIMIT_KEYS), f"{where}deploy.resources.limits.")
    parse = {"cpu": _cpus, "memory": _memory, "pids_limit": _int}
    return {field: parse[field](limits[key], f"{where}deploy.resources.limits.{key}")
            for key, field in LIMIT_KEYS.items() if key in limits}


def _text(value: Any, where: str) -> str:
    return str(value)


# How a Compose key's value is read: by the key where Compose has its own form, else by the field's kind
_PARSERS: dict[str, Any] = {"command": _words, "entrypoint": _words, "environment": _environment, "cpus": _cpus,
                            "mem_limit": _memory, "depends_on": _depends_on, "healthcheck": _healthcheck}
_BY_KIND: dict[str, Any] = {"flag": _bool, "whole": _int, "number": _cpus, "text": _text}


def _parser(key: str) -> Any:
    field = COMPOSE_FIELDS[key]
    info = JobSpec.model_fields.get(field) or ServiceSpec.model_fields[field]
    return _PARSERS.get(key) or _BY_KIND[catalogue.kind(info)]


def _service_fields(name: str, data: Any) -> dict[str, Any]:
    where = f"services.{name}."
    data = _mapping(data, f"services.{name}")
    _refuse_unknown(data, SERVICE_KEYS, where)
    if "image" not in data:
        raise ComposeError(f"services.{name}.image is missing (building images is not supported)")
    try:
        fields = {COMPOSE_FIELDS[key]: _parser(key)(value, f"{where}{key}")
                  for key, value in data.items() if key != "deploy"}
        for field, value in (_deploy_limits(data["deploy"], where) if "deploy" in data else {}).items():
            if field in fields:
                key = next(k for k, f in LIMIT_KEYS.items() if f == field)
                raise ComposeError(f"{where}deploy.resources.limits.{key} repeats a limit set at the service's "
                                   "top level: give it once")
            fields[field] = value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, JobSpecError):
            raise
        raise ComposeError(f"services.{name}: a limit is not understood ({exc})") from exc
    return fields


def parse_compose(text: str) -> dict[str, Any]:
    """The YAML of a compose file, its top level checked."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ComposeError(f"not a YAML compose file: {exc}") from exc
    data = _mapping(data, "the compose file")
    _refuse_unknown(data, TOP_LEVEL, "")
    services = _mapping(data.get("services"), "services")
    if not services:
        raise ComposeError("services is empty")
    return services


def load_compose(text: str, main: str, **job_options: Any) -> JobSpec:
    """The JobSpec of a compose file whose service `main` is the job's main container; the
    other services run beside it. `job_options` are further JobSpec fields (timeout, tags, ...)."""
    services = parse_compose(text)
    if main not in services:
        raise ComposeError(f"main service {main!r} is not in the compose file (services: "
                           f"{', '.join(map(str, services))})")
    main_data = _mapping(services[main], f"services.{main}")
    for key in MAIN_ONLY_REFUSED:
        if key in main_data:
            raise ComposeError(f"services.{main}.{key} is not supported on the main service: the job ends "
                               "when it exits")
    main_fields = _service_fields(main, main_data)
    depends_on = main_fields.pop("depends_on", None)
    others = {str(name): ServiceSpec(**_service_fields(str(name), data))
              for name, data in services.items() if name != main}
    return JobSpec(**{**main_fields, **job_options, "services": others, "main_service": main,
                      "depends_on": depends_on})
