"""The `swarmsync` and `prefect` command lines against the running stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import swarmsync
from tests.waiting import wait_until


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "swarmsync.cli.main", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )




def test_submit_wait_streams_output_and_exits_with_the_jobs_code(stack, busybox, no_leftover_containers):
    done = cli("submit", "--wait", busybox, "--", "sh", "-c", "echo from-cli; exit 4")
    assert done.returncode == 4, done.stderr
    assert "from-cli" in done.stdout
    assert "exit code 4" in done.stderr


def test_submit_prints_the_id_and_result_downloads_the_txt(stack, busybox, tmp_path, no_leftover_containers):
    # --gpus and --user are options because JobSpec declares the fields (swarmsync/catalogue.py); 0 GPUs asks for none
    done = cli("submit", "-e", "WHO=world", "--gpus", "0", "--user", "65534", "--shell", "echo hello $WHO", busybox)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    swarmsync.get_job(job_id).wait(60)
    assert {"gpus": 0, "user": "65534"}.items() <= swarmsync.get_job(job_id).flow_run().parameters["job"].items()
    out = tmp_path / "result.txt"
    assert cli("result", job_id, "-o", str(out)).returncode == 0
    assert out.read_bytes() == b"hello world\n"
    assert cli("result", job_id).stdout == "hello world\n"
    status = cli("status", job_id)
    assert "Completed" in status.stdout and "exit code 0" in status.stdout
    assert job_id in cli("jobs", "--limit", "50").stdout
    logs = cli("logs", job_id).stdout
    assert "hello world" in logs
    assert swarmsync.get_job(job_id).flow_run().name == f"{busybox} echo hello $WHO"  # readable in the Prefect UI


def test_submit_wait_prints_every_line_once_in_order_and_the_cap_marker(stack, busybox, no_leftover_containers):
    done = cli("submit", "--wait", busybox, "seq", "1", "10000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(i) for i in range(1, 10_001)]  # no gap, no duplicate, in order
    # past the stack's log cap (100 kB): the lines up to the cap, in order, then the marker
    done = cli("submit", "--wait", busybox, "seq", "1", "100000")
    assert done.returncode == 0, done.stderr
    *lines, marker = done.stdout.splitlines()
    assert lines == [str(i) for i in range(1, len(lines) + 1)] and len(lines) > 10_000
    assert marker.startswith("[swarmsync] output truncated in the log")
    job_id = re.search(r"job ([0-9a-f-]{36})", done.stderr).group(1)
    follow = cli("logs", "--follow", job_id).stdout  # a finished job: its whole log, once
    assert follow.count("[swarmsync] output truncated") == 1 and follow.count("flow_runs.stdout: 10000\n") == 1


def test_files_extracts_the_output_folder(stack, busybox, tmp_path, no_leftover_containers):
    data = tmp_path / "in.txt"
    data.write_bytes(b"abc")
    done = cli("submit", "--input", f"{data}:/in/data.txt", "--output-dir", "/out", busybox,
               "--", "sh", "-c", "mkdir -p /out && cp /in/data.txt /out/")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()  # not list_jobs()[0]: other tests' delayed runs may sort first
    assert swarmsync.get_job(job_id).wait(60).status() == "Completed"
    dest = tmp_path / "files"
    assert cli("files", str(job_id), "-o", str(dest)).returncode == 0
    assert (dest / "out" / "data.txt").read_bytes() == b"abc"


def test_cancel_from_the_cli(stack, busybox, no_leftover_containers):
    job = swarmsync.submit(busybox, "echo started; sleep 60")
    wait_until(lambda: job.status() not in ("Scheduled", "Pending"), "the job to start")
    done = cli("cancel", job.id)
    assert done.returncode == 0, done.stderr
    job.wait(30)
    assert job.status() == "Cancelled"


def test_invalid_input_gets_a_clear_message_and_nonzero_exit(stack):
    done = cli("submit", "--memory", "lots", "busybox", "true")
    assert done.returncode == 2
    assert "memory" in done.stderr and "not understood" in done.stderr
    missing = cli("status", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 2 and "no job" in missing.stderr
    traversal = cli("result", "../../etc/passwd")
    assert traversal.returncode == 2 and "not a job id" in traversal.stderr


def test_prefect_deployment_run_runs_a_job_the_same_way(stack, busybox, no_leftover_containers):
    env = {"PREFECT_API_URL": f"http://127.0.0.1:{stack['SWARMSYNC_PORT']}/api"}
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "deployment", "run", "container-job/default",
         "--param", f'job={{"image": "{busybox}", "command": "echo via-prefect"}}', "--watch"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)
    assert swarmsync.get_job(run_id).result().stdout == "via-prefect\n"
    assert swarmsync.get_job(run_id).flow_run().name == f"{busybox} echo via-prefect"  # named as it started


def test_env_prints_the_prefect_api_url(stack):
    assert cli("env").stdout.strip() == f"export PREFECT_API_URL=http://127.0.0.1:{stack['SWARMSYNC_PORT']}/api"


def test_doctor_reports_each_part(stack):
    ok = cli("doctor")
    assert ok.returncode == 0, ok.stdout
    for part in ("Prefect API", "Docker engine", "Database", "Redis", "Workers"):
        assert part in ok.stdout
    down = cli("doctor", env={"SWARMSYNC_PORT": "1"})
    assert down.returncode == 1
    assert "down" in down.stdout


@pytest.mark.timeout(900)  # a whole stack, a job and three CLI runs: minutes on a busy host
def test_demo_runs_a_sample_job_and_every_hint_it_prints_works_as_printed(tmp_path, busybox):
    """A fresh home: the demo job's output, then the hints (a command to copy, the dashboard's one-time
    login link), each run exactly as printed from where the demo ran."""
    import time

    import httpx

    from tests.conftest import free_port

    home = tmp_path / "home"
    env = {"SWARMSYNC_HOME": str(home), "SWARMSYNC_PORT": str(free_port()),
           "SWARMSYNC_API_PORT": str(free_port()), "SWARMSYNC_DASHBOARD_PORT": str(free_port())}
    inherited = ("SWARMSYNC_DATABASE_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "SWARMSYNC_API_URL",
                 "SWARMSYNC_REDIS_URL")
    env = {**{k: v for k, v in os.environ.items() if k not in inherited}, **env}
    out = tmp_path / "demo.log"
    with open(out, "wb") as log:
        demo = subprocess.Popen([sys.executable, "-m", "swarmsync.cli.main", "demo"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 420  # generous: Prefect, the API and the dashboard start slowly on a busy host
        while "Ctrl-C stops the stack" not in out.read_text():
            assert demo.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        printed = out.read_text()
        assert "hello from SwarmSync" in printed and "archived at" in printed and "Prefect:" in printed
        hints = {line.split(": ", 1)[0].strip(): line.split(": ", 1)[1].strip()
                 for line in printed.splitlines() if line.startswith("  ") and ": " in line}
        for what in ("try", ".txt output", "a new link"):
            done = subprocess.run(hints[what], shell=True, capture_output=True, text=True, env=env, timeout=300)
            assert done.returncode == 0, f"{what}: {hints[what]}\n{done.stdout}{done.stderr}"
            if what == "try":
                assert done.stdout == "hello\n"
        assert not hints["try"].startswith("swarmsync ") or shutil_which_is_ours()
        link = re.search(r"http://\S+/\?login=(ssl_\S+)", printed).group(1)
        api = f"http://127.0.0.1:{env['SWARMSYNC_API_PORT']}"
        session = httpx.post(f"{api}/auth/link", json={"token": link}, timeout=30)
        assert session.status_code == 200, session.text
        assert session.json()["user"]["role"] == "admin"
        assert httpx.post(f"{api}/auth/link", json={"token": link}, timeout=30).status_code == 401  # once
    finally:
        os.killpg(demo.pid, 15)
        demo.wait(60)
    assert Path(home / "swarmsync.db").exists()


def shutil_which_is_ours() -> bool:
    import shutil

    found = shutil.which("swarmsync")
    return bool(found) and Path(found).resolve() == (Path(sys.executable).parent / "swarmsync").resolve()


def test_demo_says_how_to_fix_a_missing_docker_engine(tmp_path):
    done = cli("demo", "--no-keep-running", env={
        "SWARMSYNC_HOME": str(tmp_path), "SWARMSYNC_DOCKER_HOST": "unix:///nonexistent/docker.sock",
    })
    assert done.returncode == 2
    assert "No Docker engine answers" in done.stderr and "dockerd" in done.stderr
