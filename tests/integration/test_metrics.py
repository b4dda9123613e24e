"""GET /metrics read by a real Prometheus (Debian's `prometheus`, started here with its own config and
storage): jobs of the session stack counted by state, pool and project, and the API's latency histogram,
read back through Prometheus' query API as a dashboard or an alert rule would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from typer.testing import CliRunner

import swarmsync
from swarmsync.auth import projects, users
from swarmsync.auth.roles import Principal
from swarmsync.cli.main import app
from swarmsync.db import ArchiveRecord, migrate, session_scope
from swarmsync.metrics import archive_metrics
from swarmsync.settings import get_settings
from tests.accounts.conftest import PASSWORD, clear_caches
from tests.conftest import ARTIFACTS, free_port, stop_process
from tests.waiting import wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "monitoring" / "grafana-dashboard.json"


def scrape_config(api_port: int, credentials: Path) -> str:
    """The scrape job of infra/monitoring/prometheus.yml, pointed at the session stack, every 2 s."""
    return f"""
global:
  scrape_interval: 2s
  scrape_timeout: 2s  # a scrape asks Prefect a few questions: on a loaded test machine 1 s is too short
  evaluation_interval: 2s
scrape_configs:
  - job_name: swarmsync
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {credentials}
    static_configs:
      - targets: ["127.0.0.1:{api_port}"]
"""


@pytest.fixture
def prometheus(stack, tmp_path) -> Iterator[tuple[str, str]]:
    """A Prometheus of this test scraping the stack's API with a metrics:read token; yields its URL and the
    token. The token is made as the docs say: `swarmsync token create NAME --user ADMIN --scope metrics:read`."""
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus is not installed: run 'sudo bash infra/host-setup.sh test'")
    admin = f"prom-admin-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), admin, PASSWORD, "admin")
    made = CliRunner().invoke(app, ["token", "create", "prometheus", "--user", admin, "--scope", "metrics:read"])
    assert made.exit_code == 0, made.output
    token = next(line for line in made.stdout.splitlines() if line.startswith("ssk_"))
    credentials = tmp_path / "swarmsync-metrics.token"
    credentials.write_text(token + "\n")
    credentials.chmod(0o600)
    config = tmp_path / "prometheus.yml"
    config.write_text(scrape_config(int(stack["SWARMSYNC_API_PORT"]), credentials))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is None and _get(f"{url}/-/ready") is not None, "Prometheus is ready",
                   timeout=60)
        yield url, token
    finally:
        stop_process(proc)
        log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "prometheus.log", ARTIFACTS / "metrics-prometheus.log")


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local test URL
            return response.read()
    except OSError:
        return None


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector of `promql` from Prometheus' HTTP API (/api/v1/query); a query Prometheus refuses
    (bad PromQL: HTTP 400) fails the test with Prometheus' reason."""
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a local test URL
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"Prometheus refused {promql!r}: {exc.read().decode(errors='replace')}") from None
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_prometheus_scrapes_job_counts_by_state_pool_and_project_and_the_api_latency(
        stack, busybox, no_leftover_containers, prometheus):
    prometheus_url, _token = prometheus
    project = f"metrics-{uuid.uuid4().hex[:6]}"
    projects.create_project(Principal.local(), project)
    jobs = [swarmsync.submit(busybox, command, project=project, pull_policy="never")
            for command in ("echo fine", "sh -c 'echo broken; exit 3'")]
    assert sorted(job.wait(180).status() for job in jobs) == ["Completed", "Failed"]
    pool = get_settings().work_pool

    def counted() -> dict[str, float]:
        rows = query(prometheus_url, f'swarmsync_jobs_total{{project="{project}"}}')
        found = {row["metric"]["state"]: float(row["value"][1]) for row in rows
                 if row["metric"].get("pool") == pool}
        return found if sum(found.values()) == 2 else {}

    try:
        by_state = wait_until(counted, "Prometheus has scraped both jobs of the project", timeout=120)
    except AssertionError as exc:  # say why: the target's last scrape error, as Prometheus saw it
        targets = json.loads(_get(f"{prometheus_url}/api/v1/targets") or b"{}")
        raise AssertionError(f"{exc}; targets: {targets}") from None
    assert by_state == {"COMPLETED": 1.0, "FAILED": 1.0}
    scraped = query(prometheus_url, 'up{job="swarmsync"}')
    assert [row["value"][1] for row in scraped] == ["1"]  # the scrape with the token itself succeeded
    latency = wait_until(lambda: query(prometheus_url, 'swarmsync_api_request_duration_seconds_count'
                                       '{route="/metrics",method="GET",status="200"}'),
                         "the API's latency histogram of its /metrics route", timeout=60)
    assert float(latency[0]["value"][1]) >= 1
    buckets = query(prometheus_url, f'swarmsync_job_duration_seconds_bucket{{project="{project}",le="+Inf"}}')
    assert [float(row["value"][1]) for row in buckets] == [2.0]  # both jobs' run times, in one pool
    waits = query(prometheus_url, f'swarmsync_job_queue_wait_seconds_count{{project="{project}"}}')
    assert [float(row["value"][1]) for row in waits] == [2.0]
    archived = query(prometheus_url, f'swarmsync_archive_bytes{{project="{project}"}}')
    assert float(archived[0]["value"][1]) >= len("fine\n") + len("broken\n")  # at least both output.txt
    assert query(prometheus_url, f'swarmsync_workers_online{{pool="{pool}"}} >= 1')
    assert query(prometheus_url, f'swarmsync_jobs_running{{pool="{pool}"}}')  # a series per queue, even at 0
    assert {row["metric"]["source"]: row["value"][1] for row in query(prometheus_url, "swarmsync_metrics_source_up")
            } == {"archive_index": "1", "prefect": "1", "worker_tokens": "1"}
    # every query of the shipped Grafana dashboard is valid PromQL over these series (Grafana itself does
    # not run here); the panel of job counts shows both jobs' states
    panels = json.loads(DASHBOARD.read_text())["panels"]
    for panel in panels:
        for target in panel["targets"]:
            query(prometheus_url, target["expr"])  # asserts Prometheus answered "success"
    states = {row["metric"]["state"] for row in query(prometheus_url, panels[0]["targets"][0]["expr"])}
    assert {"COMPLETED", "FAILED"} <= states
    if shots := os.environ.get("SWARMSYNC_TEST_METRICS_SCREENSHOT_DIR"):  # docs/images (alerts-and-monitoring.md)
        graph_screenshot(prometheus_url, "sum by (state) (swarmsync_jobs_total)",
                         Path(shots) / "prometheus-jobs-by-state.png")


def graph_screenshot(prometheus: str, promql: str, path: Path) -> None:
    """Prometheus' own graph page of `promql` in headless Chromium (Grafana does not run here)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    page = f"{prometheus}/graph?" + urllib.parse.urlencode(
        {"g0.expr": promql, "g0.tab": "0", "g0.range_input": "5m", "g0.stacked": "0"})
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,900", "--virtual-time-budget=10000", f"--screenshot={path}", page],
                   check=True, capture_output=True, timeout=120)



def test_history_rows_of_every_age_give_one_sample_per_label_set_and_cumulative_buckets(tmp_path, monkeypatch):
    """Rows indexed before projects (project NULL: the default project) and before migration
    0011_archive_metrics (no pool, run time worked out by the migration, no queue wait) count with today's
    rows, each label set once: Prometheus refuses a whole scrape that repeats one."""
    monkeypatch.setenv("SWARMSYNC_DATABASE_URL", f"sqlite:///{tmp_path / 'swarmsync.db'}")
    clear_caches()
    try:
        migrate(revision="0009_worker_tokens")
        now = datetime.now(UTC)
        with session_scope() as session:  # as an older SwarmSync indexed them
            for job_id, project, seconds in (("before-projects", None, 3), ("after-projects", "default", 40)):
                session.execute(text(
                    "INSERT INTO archive_index (job_id, image, state, archive_path, manifest_sha256, output_bytes, "
                    "tags, project, started_at, finished_at) VALUES (:id, 'busybox', 'COMPLETED', 'x', '0', 7, "
                    "'[]', :project, :started, :finished)"),
                    {"id": job_id, "project": project, "started": now - timedelta(seconds=seconds), "finished": now})
        migrate()
        with session_scope() as session:  # as this SwarmSync indexes them
            session.add(ArchiveRecord(
                job_id="new", image="busybox", state="FAILED", archive_path="x", manifest_sha256="0", output_bytes=7,
                tags=[], project="default", pool="p1", started_at=now, finished_at=now, archive_bytes=100,
                duration_seconds=0.2, queue_wait_seconds=4.0))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Fixed(archive_metrics()))
        exposed = generate_latest(registry).decode()
    finally:
        monkeypatch.undo()
        clear_caches()
    samples = [(s.name, tuple(sorted(s.labels.items())), s.value)
               for family in text_string_to_metric_families(exposed) for s in family.samples]
    keys = [(name, labels) for name, labels, _ in samples]
    assert len(keys) == len(set(keys)), f"a label set repeated:\n{exposed}"
    value = {(name, labels): v for name, labels, v in samples}
    old, new = (("pool", "unknown"), ("project", "default")), (("pool", "p1"), ("project", "default"))
    assert value[("swarmsync_jobs_total", (*old, ("state", "COMPLETED")))] == 2
    assert value[("swarmsync_jobs_total", (*new, ("state", "FAILED")))] == 1
    assert value[("swarmsync_archive_bytes", old)] == 14  # output.txt only, from before the archive size
    assert value[("swarmsync_archive_bytes", new)] == 100
    buckets = {dict(labels)["le"]: v for (name, labels), v in value.items()
               if name == "swarmsync_job_duration_seconds_bucket" and old[0] in labels}
    assert (buckets["2.5"], buckets["5.0"], buckets["30.0"], buckets["60.0"], buckets["+Inf"]) == (0, 1, 1, 2, 2)
    assert value[("swarmsync_job_duration_seconds_sum", old)] == pytest.approx(43, abs=0.01)
    assert not any(name.startswith("swarmsync_job_queue_wait") and old[0] in labels
                   for name, labels in keys)  # when the old rows were due was not kept
    assert value[("swarmsync_job_queue_wait_seconds_bucket", (("le", "2.5"), *new))] == 0
    assert value[("swarmsync_job_queue_wait_seconds_bucket", (("le", "5.0"), *new))] == 1


class Fixed:
    """A collector of metric families already read."""

    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> list[Any]:
        return self.families
