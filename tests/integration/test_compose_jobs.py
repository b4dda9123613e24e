"""Jobs with services (compose jobs) on the real engine: a main container talking to a service by
name, health gates, a failing health check, a service exiting early, cancel, timeout, kill -9 of
the worker, the CLI; after each, nothing of the job is left (containers, network, volumes)."""

from __future__ import annotations

import io
import os
import signal
import uuid

import pytest
from typer.testing import CliRunner

import swarmsync
from swarmsync.archive import read_archive_file, verify_archive
from swarmsync.cli.main import app
from swarmsync.compose import load_compose
from swarmsync.deployments.pools import create_pool
from swarmsync.docker_runner import LABEL_FLOW_RUN
from swarmsync.service_group import LABEL_SERVICE
from tests.waiting import wait_until
from tests.workers import WorkerProcesses

VOLUME_IMAGE = "swarmsync/busybox-volume:local"  # busybox with an anonymous volume (VOLUME /data)

# web needs ~3 s before it serves (and so before it is healthy); app fetches from it by name
WEB_AND_APP = """
services:
  web:
    image: {volume_image}
    command: ["sh", "-c", "sleep 3; mkdir -p /www; echo hello-from-web > /www/index.html; echo serving;
              exec httpd -f -p 8080 -h /www"]
    healthcheck: {{test: "wget -qO- http://127.0.0.1:8080/index.html", interval: 300ms, retries: 50}}
  app:
    image: {busybox}
    command: ["sh", "-c", "wget -qO- http://web:8080/index.html; echo app-done >&2"]
    depends_on: {{web: {{condition: service_healthy}}}}
"""


@pytest.fixture(scope="module")
def volume_image(docker_client, busybox) -> str:
    docker_client.images.build(fileobj=io.BytesIO(f"FROM {busybox}\nVOLUME /data\n".encode()), tag=VOLUME_IMAGE,
                               rm=True)
    return VOLUME_IMAGE


def leftovers(docker_client, job_id: str, volumes: list[str] = ()) -> list[str]:
    """Anything of the job still on the engine, found by its labels (the engine is shared)."""
    label = {"label": f"{LABEL_FLOW_RUN}={job_id}"}
    left = [f"container {c.name}" for c in docker_client.containers.list(all=True, filters=label)]
    left += [f"network {n.name}" for n in docker_client.networks.list(filters=label)]
    existing = {v.name for v in docker_client.volumes.list()}
    return left + [f"volume {v}" for v in volumes if v in existing]


def _anonymous_volumes(docker_client, job_id: str, service: str) -> list[str]:
    def mounts():
        found = docker_client.containers.list(
            all=True, filters={"label": [f"{LABEL_FLOW_RUN}={job_id}", f"{LABEL_SERVICE}={service}"]})
        return found and [m["Name"] for m in found[0].attrs["Mounts"] if m["Type"] == "volume"]

    return wait_until(mounts, f"the {service} container of {job_id} with its volume", timeout=60, poll=0.1)


def _log_lines(job) -> list[str]:
    return [m for _, name, m in job.logs() if name.startswith("prefect.flow_runs.std")]


def test_compose_jobs_run_stream_archive_fail_and_clean_up(stack, busybox, volume_image, docker_client,
                                                           no_leftover_containers, tmp_path):
    """Several compose jobs at once (one stack, one worker), each checked after all have ended."""
    web_app = load_compose(WEB_AND_APP.format(volume_image=volume_image, busybox=busybox), main="app", timeout=120)
    unhealthy = load_compose(f"""
services:
  db: {{image: {busybox}, command: sleep 60,
        healthcheck: {{test: "echo not-ready; exit 1", interval: 300ms, retries: 2}}}}
  app: {{image: {busybox}, command: echo never}}
""", main="app")
    never_ready = load_compose(f"""
services:
  db: {{image: {busybox}, command: sleep 60, healthcheck: {{test: "exit 1", interval: 1s, retries: 1000}}}}
  app: {{image: {busybox}, command: echo never}}
""", main="app", service_start_timeout=2)
    exits_early = load_compose(f"""
services:
  flaky: {{image: {busybox}, command: ["sh", "-c", "echo flaky-up; sleep 1; exit 3"]}}
  app: {{image: {busybox}, command: sleep 60}}
""", main="app")
    allowed = load_compose(f"""
services:
  once: {{image: {busybox}, command: echo once-done, x-swarmsync-allow-exit: true}}
  seed: {{image: {busybox}, command: echo seeded}}
  app: {{image: {busybox}, command: ["sh", "-c", "sleep 2; echo app-ok"],
         depends_on: {{once: {{condition: service_started}}, seed: {{condition: service_completed_successfully}}}}}}
""", main="app")
    sleeper = f"""
services:
  web: {{image: {busybox}, command: httpd -f -p 8080}}
  app: {{image: {busybox}, command: ["sh", "-c", "echo app-running; sleep 60"]}}
"""
    timed_out = load_compose(sleeper, main="app", timeout=4)
    cancelled = load_compose(sleeper, main="app")
    jobs = {name: swarmsync.submit(spec) for name, spec in [
        ("web_app", web_app), ("unhealthy", unhealthy), ("never_ready", never_ready), ("exits_early", exits_early),
        ("allowed", allowed), ("timed_out", timed_out), ("cancelled", cancelled)]}
    volumes = _anonymous_volumes(docker_client, jobs["web_app"].id, "web")
    # the CLI meanwhile (in-process): a file with an unknown key is refused by name; a good one is submitted
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"services: {{app: {{image: {busybox}, ports: ['8080:80']}}}}\n")
    refused = CliRunner().invoke(app, ["submit", "--compose", str(bad), "--main", "app"], env={"SWARMSYNC_URL": None})
    assert refused.exit_code != 0 and "services.app.ports is not supported" in refused.output
    good = tmp_path / "job.yaml"
    good.write_text(f"services:\n  web: {{image: {busybox}, command: httpd -f -p 8080}}\n"
                    f"  app: {{image: {busybox}, command: sh -c 'echo via-cli'}}\n")
    submitted = CliRunner().invoke(app, ["submit", "--compose", str(good), "--main", "app", "--timeout", "60"],
                                   env={"SWARMSYNC_URL": None})
    assert submitted.exit_code == 0, submitted.output
    jobs["cli"] = swarmsync.get_job(submitted.stdout.strip())
    template = f"compose-{uuid.uuid4().hex[:6]}"  # a template (and so a schedule) carries the services
    saved = CliRunner().invoke(app, ["template", "save", template, "--compose", str(good), "--main", "app",
                                     "--timeout", "60"], env={"SWARMSYNC_URL": None})
    assert saved.exit_code == 0, saved.output
    jobs["template"] = swarmsync.submit(template=template)

    wait_until(lambda: any("app-running" in line for line in _log_lines(jobs["cancelled"])), "app-running", 90)
    jobs["cancelled"].cancel()
    for job in jobs.values():
        job.wait(120)

    # main talks to a service by name, after waiting ~3 s for it to be healthy
    job = jobs["web_app"]
    assert job.status() == "Completed", job.result().message
    result = job.result()
    assert result.stdout == "hello-from-web\n" and result.stderr == "app-done\n"
    assert "web | serving" in result.output and "app | hello-from-web" in result.output
    assert read_archive_file(job.id, "services/web/stdout.txt") == b"serving\n"
    assert CliRunner().invoke(app, ["result", job.id, "--service", "web"], env={"SWARMSYNC_URL": None}).stdout \
        == "serving\n"
    containers = result.manifest["containers"]
    assert containers["app"]["exit_code"] == 0 and containers["app"]["role"] == "main"
    assert containers["web"]["image_digest"] and containers["web"]["role"] == "service"
    assert set(containers["web"]["files"]) == {"services/web/stdout.txt", "services/web/stderr.txt"}
    assert verify_archive(job.id) == []
    lines = _log_lines(job)
    assert "web | serving" in lines and "app | hello-from-web" in lines
    assert volumes and leftovers(docker_client, job.id, volumes) == []

    job = jobs["unhealthy"]
    assert job.status() == "Failed"
    assert "service db is unhealthy" in job.result().message and "not-ready" in job.result().message

    job = jobs["never_ready"]
    assert job.status() == "Failed"
    assert "service db did not become healthy within 2 s (service_start_timeout)" in job.result().message

    job = jobs["exits_early"]
    assert job.status() == "Failed"
    assert "service flaky exited with code 3 while the job ran" in job.result().message
    assert job.result().manifest["containers"]["flaky"]["exit_code"] == 3

    job = jobs["allowed"]
    assert job.status() == "Completed", job.result().message
    assert "once | once-done" in job.result().output and job.result().stdout == "app-ok\n"

    assert jobs["timed_out"].status() == "Failed" and "timed out after 4 s" in jobs["timed_out"].result().message
    assert jobs["cancelled"].status() == "Cancelled"
    assert jobs["cli"].status() == "Completed" and jobs["cli"].result().stdout == "via-cli\n"
    assert jobs["template"].status() == "Completed" and jobs["template"].result().stdout == "via-cli\n"
    assert set(jobs["template"].result().manifest["containers"]) == {"web", "app"}

    for name, job in jobs.items():
        assert leftovers(docker_client, job.id) == [], name


def test_kill_9_of_the_worker_during_a_group_is_adopted_and_cleaned(stack, busybox, docker_client, tmp_path,
                                                                    no_leftover_containers):
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool)
    workers = WorkerProcesses(tmp_path)
    try:
        first = workers.start(pool)
        job = swarmsync.submit(load_compose(f"""
services:
  web: {{image: {busybox}, command: ["sh", "-c", "mkdir -p /w; echo up > /w/s; exec httpd -f -p 8080 -h /w"]}}
  app: {{image: {busybox}, command: ["sh", "-c", "echo start-$(cat /proc/sys/kernel/random/uuid); sleep 4;
                                                  wget -qO- http://web:8080/s; echo end"]}}
""", main="app"), pool=pool)

        def started() -> str | None:
            for c in docker_client.containers.list(filters={"label": f"{LABEL_FLOW_RUN}={job.id}"}):
                if c.labels.get(LABEL_SERVICE) == "app" and b"start-" in c.logs():
                    return c.logs().decode().strip()
            return None

        seen = wait_until(started, "the main container running", timeout=60, poll=0.1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        running = docker_client.containers.list(filters={"label": f"{LABEL_FLOW_RUN}={job.id}"})
        assert len(running) == 2, "the group must outlive its worker"
        workers.start(pool)
        job.wait(120)
        assert job.status() == "Completed", job.result().message
        assert job.result().stdout == f"{seen}\nup\nend\n"  # the same main container: adopted, not run again
        assert set(job.result().manifest["containers"]) == {"web", "app"}
        wait_until(lambda: leftovers(docker_client, job.id) == [], "the group removed", timeout=30)
    finally:
        workers.stop_all()
