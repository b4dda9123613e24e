"""Compose files as JobSpecs (swarmsync.compose), services in the JobSpec and the pool's policy
on a job of several containers: pure logic."""

from __future__ import annotations

import doctest

import pytest
from pydantic import ValidationError

import swarmsync.compose
from swarmsync.compose import ComposeError, load_compose, parse_duration
from swarmsync.policy import HostPolicy, PolicyViolation
from swarmsync.spec import JobSpec, JobSpecError, ServiceSpec

FILE = """
services:
  db:
    image: busybox
    command: httpd -f -p 8080
    environment: {GREETING: hi, ENABLED: true}
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://localhost:8080/ || exit 1"]
      interval: 500ms
      timeout: 2s
      retries: 5
      start_period: 1m30s
    deploy: {resources: {limits: {cpus: "0.5", memory: 64m, pids: 50}}}
  seed:
    image: busybox
    command: ["true"]
  app:
    image: busybox
    entrypoint: /bin/sh -c
    command: ["wget -qO- http://db:8080/"]
    environment: [A=1, B=two=2]
    working_dir: /tmp
    mem_limit: 32m
    depends_on:
      db: {condition: service_healthy}
      seed: {condition: service_completed_successfully}
  tail:
    image: busybox
    command: echo bye
    x-swarmsync-allow-exit: true
"""


def test_doctests() -> None:
    assert doctest.testmod(swarmsync.compose, optionflags=doctest.ELLIPSIS).failed == 0


def test_a_compose_file_maps_to_main_and_services() -> None:
    spec = load_compose(FILE, main="app", timeout=60, tags=["t"])
    assert spec.main_service == "app" and spec.image == "busybox"
    assert spec.entrypoint == ["/bin/sh", "-c"] and spec.command == ["wget -qO- http://db:8080/"]
    assert spec.env == {"A": "1", "B": "two=2"} and spec.working_dir == "/tmp" and spec.memory == "32m"
    assert spec.depends_on == {"db": "service_healthy", "seed": "service_completed_successfully"}
    assert spec.timeout == 60 and spec.tags == ["t"]
    db = spec.services["db"]
    assert db.command == ["httpd", "-f", "-p", "8080"] and db.env == {"GREETING": "hi", "ENABLED": "true"}
    assert (db.cpu, db.memory, db.pids_limit) == (0.5, "64m", 50)
    assert db.healthcheck.docker() == {"test": ["CMD-SHELL", "wget -qO- http://localhost:8080/ || exit 1"],
                                       "interval": 500_000_000, "timeout": 2_000_000_000, "retries": 5,
                                       "start_period": 90_000_000_000}
    assert spec.services["tail"].allow_exit and spec.may_exit("tail")
    assert spec.may_exit("seed") and not spec.may_exit("db")  # waited for until it completed
    assert spec.service_order() == ["db", "seed", "tail"]
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec  # travels through the API as JSON


@pytest.mark.parametrize("text, named", [
    ("services: {app: {image: busybox, ports: ['80:80']}}", "services.app.ports"),
    ("services: {app: {image: busybox}, db: {image: busybox, volumes: ['/x:/y']}}", "services.db.volumes"),
    ("services: {app: {image: busybox}}\nnetworks: {}", "networks"),
    ("services: {app: {image: busybox}}\nvolumes: {data: {}}", "volumes"),
    ("services: {app: {image: busybox}, db: {image: busybox, healthcheck: {test: 'true', disable: true}}}",
     "services.db.healthcheck.disable"),
    ("services: {app: {image: busybox, depends_on: {db: {condition: service_started, restart: true}}}, "
     "db: {image: busybox}}", "services.app.depends_on.db.restart"),
    ("services: {app: {image: busybox, deploy: {replicas: 2}}}", "services.app.deploy.replicas"),
    ("services: {app: {image: busybox, deploy: {resources: {limits: {devices: []}}}}}",
     "services.app.deploy.resources.limits.devices"),
    ("services: {app: {image: busybox, deploy: {resources: {reservations: {}}}}}",
     "services.app.deploy.resources.reservations"),
    ("services: {app: {build: .}}", "services.app.build"),
    ("services: {app: {image: busybox, x-other: 1}}", "services.app.x-other"),
    ("services: {app: {image: busybox, healthcheck: {test: 'true'}}}", "services.app.healthcheck"),
    ("services: {app: {image: busybox, environment: [HOME]}}", "services.app.environment.HOME"),
])
def test_unknown_or_unsupported_keys_are_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(ComposeError, match=named.replace(".", r"\.")):
        load_compose(text, main="app")


@pytest.mark.parametrize("text, main, message", [
    ("services: {app: {image: busybox}}", "web", "main service 'web' is not in the compose file"),
    ("services: {}", "app", "services is empty"),
    ("- a list", "app", "must be a mapping"),
    ("services: {app: {image: busybox, depends_on: [nope]}}", "app", "depends on 'nope', which is not a service"),
    ("services: {app: {image: busybox, depends_on: {db: {condition: service_healthy}}}, db: {image: busybox}}",
     "app", "'db' has no healthcheck"),
    ("services: {app: {image: busybox}, a: {image: busybox, depends_on: [b]}, b: {image: busybox, depends_on: [a]}}",
     "app", "cycle: a -> b -> a"),
    ("services: {app: {image: busybox, depends_on: {db: {condition: service_done}}}, db: {image: busybox}}",
     "app", "service_done"),
    ("services: {app: {image: busybox}, db: {image: busybox, healthcheck: {test: 'true', interval: 5 minutes}}}",
     "app", "not a duration"),
    ("services: {app: {image: busybox}, Bad_Name: {image: busybox}}", "app", "service name 'Bad_Name'"),
    ("services: {app: {image: 'UPPER'}}", "app", "not a valid image reference"),
])
def test_invalid_compose_files_say_what_is_wrong(text: str, main: str, message: str) -> None:
    with pytest.raises((ComposeError, ValidationError, JobSpecError), match=message):
        load_compose(text, main=main)


def test_durations() -> None:
    assert parse_duration("1m30s", "x") == 90 and parse_duration("250ms", "x") == 0.25 and parse_duration(3, "x") == 3
    with pytest.raises(ComposeError):
        parse_duration("1 m", "x")


def test_main_waits_for_every_service_by_default() -> None:
    spec = load_compose("services: {app: {image: busybox}, db: {image: busybox, healthcheck: {test: 'true'}}, "
                        "web: {image: busybox}}", main="app")
    assert spec.waits_for() == {"db": "service_healthy", "web": "service_started"}
    assert load_compose("services: {app: {image: busybox, depends_on: []}, web: {image: busybox}}",
                        main="app").waits_for() == {}


def test_a_job_with_services_runs_on_its_own_network_only() -> None:
    with pytest.raises(ValidationError, match="private network"):
        JobSpec(image="busybox", network="bridge", services={"db": ServiceSpec(image="busybox")})


def _group(**main) -> JobSpec:
    return JobSpec(image="busybox", services={"db": ServiceSpec(image="busybox", memory="300m", cpu=1, pids_limit=100),
                                              "web": ServiceSpec(image="busybox")}, **main)


def test_the_pools_ceilings_bound_the_jobs_total() -> None:
    policy = HostPolicy(max_memory="1g", default_memory=None, max_cpu=2, max_pids=400, default_pids_limit=100)
    spec = policy.check(_group(memory="300m", pids_limit=100))
    assert spec.services["web"].memory_bytes == 424 * 1024 * 1024  # what the ceiling leaves, shared
    assert spec.cpu == spec.services["web"].cpu == 0.5
    with pytest.raises(PolicyViolation, match="memory of the job's 3 containers together"):
        HostPolicy(max_memory="1g", default_memory="512m").check(_group())
    with pytest.raises(PolicyViolation, match="cpu of the job's 3 containers together"):
        HostPolicy(max_cpu=2, default_cpu=1).check(_group())
    with pytest.raises(PolicyViolation, match="pids_limit of the job's 3 containers together"):
        HostPolicy(max_pids=1000).check(_group())  # 1024 (default) + 100 + 1024
    with pytest.raises(PolicyViolation, match="nothing left of the pool's max_memory"):
        HostPolicy(max_memory="300m", default_memory=None).check(_group())


def test_policy_applies_to_every_service() -> None:
    privileged = JobSpec(image="busybox", services={"db": ServiceSpec(image="busybox", privileged=True)})
    with pytest.raises(PolicyViolation, match="service db: privileged"):
        HostPolicy().check(privileged)
    assert HostPolicy(allow_privileged=True).check(privileged).services["db"].privileged
    as_root = JobSpec(image="busybox", services={"db": ServiceSpec(image="busybox", user="0:0")})
    with pytest.raises(PolicyViolation, match="service db: user '0:0' runs as root"):
        HostPolicy().check(as_root)


def test_the_dashboards_submit_form_takes_a_compose_file() -> None:
    from swarmsync.dashboard.forms import SubmitForm, build_submission

    text = "services: {web: {image: busybox, command: httpd -f}, app: {image: busybox, command: echo hi}}"
    spec, _, errors = build_submission(SubmitForm(compose=text, main_service="app", fields={"timeout": "30"},
                                                  tags="a, b"))
    assert errors == {} and spec.services["web"].command == ["httpd", "-f"]
    assert (spec.main_service, spec.timeout, spec.tags) == ("app", 30, ["a", "b"])
    assert build_submission(SubmitForm(compose=text))[2] == {"main_service": "name the main service: the one whose "
                                                                             "exit ends the job"}
    errors = build_submission(SubmitForm(compose="services: {app: {image: busybox, ports: []}}", main_service="app"))[2]
    assert "services.app.ports is not supported" in errors["compose"]


def test_a_pool_that_puts_jobs_on_a_network_of_its_own_refuses_services() -> None:
    spec = JobSpec(image="busybox", services={"db": ServiceSpec(image="busybox")})
    with pytest.raises(PolicyViolation, match="default_network"):
        HostPolicy(default_network="corp-net", allowed_networks=["corp-net"]).check(spec)
    assert HostPolicy(default_network="none").check(spec).network is None


def test_a_limit_that_is_not_a_number_is_refused_naming_the_service() -> None:
    with pytest.raises(ComposeError, match="services.app.cpus must be a number"):
        load_compose("services: {app: {image: busybox, cpus: lots}}", main="app")


@pytest.mark.parametrize("key,value,named", [
    ("privileged", "'false'", "privileged"), ("privileged", "1", "privileged"), ("privileged", "'yes'", "privileged"),
    ("x-swarmsync-allow-exit", "'false'", "x-swarmsync-allow-exit"), ("cpus", "true", "cpus"),
    ("cpus", "'lots'", "cpus"), ("pids_limit", "'100'", "pids_limit"), ("pids_limit", "true", "pids_limit"),
    ("pids_limit", "1.5", "pids_limit"), ("mem_limit", "true", "mem_limit"),
    ("deploy", "{resources: {limits: {pids: '10'}}}", "pids"), ("deploy", "{resources: {limits: {cpus: false}}}",
                                                                  "cpus"),
    ("healthcheck", "{test: 'true', retries: '3'}", "retries"), ("healthcheck", "{test: 'true', retries: true}",
                                                                 "retries"),
])
def test_compose_booleans_and_numbers_are_strictly_typed(key, value, named) -> None:
    text = f"services:\n  app: {{image: busybox}}\n  db: {{image: busybox, {key}: {value}}}\n"
    with pytest.raises(ComposeError, match=named):
        load_compose(text, main="app")


def test_a_quoted_privileged_false_never_becomes_privileged() -> None:
    with pytest.raises(ComposeError, match="services.app.privileged must be true or false"):
        load_compose("services: {app: {image: busybox, privileged: 'false'}}", main="app")
    spec = load_compose("services: {app: {image: busybox, privileged: false, cpus: '0.5', pids_limit: 10}}",
                        main="app")
    assert spec.privileged is False and spec.cpu == 0.5 and spec.pids_limit == 10
