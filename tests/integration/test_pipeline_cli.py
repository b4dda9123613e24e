"""`swarmsync pipeline ...` on the session stack: the example of docs/pipelines.md run and followed."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli import cli


def test_the_issue_example_through_the_cli_streams_each_steps_lines(stack, busybox, tmp_path, no_leftover_containers):
    """`swarmsync pipeline run FILE --wait` on the example of docs/pipelines.md: each step's lines prefixed
    with its name, the cleanup step skipped, exit code 0; `status` and `logs` of the same pipeline."""
    example = (Path(__file__).resolve().parents[2] / "docs" / "pipelines.md").read_text()
    text = example.split("```yaml\n", 1)[1].split("```", 1)[0].replace("image: busybox",
                                                                       f"image: {busybox}\n    pull_policy: never")
    (tmp_path / "nightly-report.yaml").write_text(text)
    done = cli("pipeline", "run", str(tmp_path / "nightly-report.yaml"), "--wait", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    pipeline_id = done.stdout.splitlines()[0]
    assert "[report] 42" in done.stdout.splitlines(), done.stdout
    assert "[cleanup] Skipped" in done.stderr and "Completed" in done.stderr, done.stderr
    status = cli("pipeline", "status", pipeline_id)
    assert status.returncode == 0 and "fetch" in status.stdout and "Skipped" in status.stdout, status.stdout
    assert "[report] 42" in cli("pipeline", "logs", pipeline_id).stdout.splitlines()
    refused = tmp_path / "cycle.yaml"
    refused.write_text("name: c\nsteps:\n  a: {image: busybox, needs: [b]}\n  b: {image: busybox, needs: [a]}\n")
    bad = cli("pipeline", "run", str(refused))
    assert bad.returncode == 2 and "cycle: a -> b -> a" in bad.stderr, bad.stderr


def test_pipeline_schedule_through_the_api_shows_in_schedule_list_and_unschedules(stack, busybox, tmp_path):
    """`swarmsync pipeline schedule NAME FILE --every` with a login (SWARMSYNC_URL + token): made through the
    API as that user; `swarmsync schedule list` shows it beside job schedules; `schedule pause|resume` reach it
    by name; `unschedule` deletes it."""
    import uuid

    from swarmsync.auth import tokens, users
    from swarmsync.auth.roles import Principal
    from swarmsync.deployments import pipeline_schedules

    user, name = f"plcli-{uuid.uuid4().hex[:6]}", f"cli-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), user, "correct horse battery staple", "operator")
    remote = {"SWARMSYNC_URL": f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}",
              "SWARMSYNC_TOKEN": tokens.create_token(Principal.local(), "cli", user).token}
    (tmp_path / "p.yaml").write_text(f"name: {name}\nsteps:\n  hello:\n    image: {busybox}\n"
                                     "    pull_policy: never\n    command: [echo, hi]\n")
    made = cli("pipeline", "schedule", name, str(tmp_path / "p.yaml"), "--every", "1h", env=remote)
    assert made.returncode == 0 and f"pipeline/{name}" in made.stdout, made.stdout + made.stderr
    assert pipeline_schedules.get(name).owner == user  # made through the API, as the logged-in user
    listed = cli("schedule", "list", env={**remote, "COLUMNS": "250"})
    assert listed.returncode == 0 and name in listed.stdout and f"pipeline {name}: hello" in listed.stdout, \
        listed.stdout + listed.stderr
    # the Hibernator treats it like a job's: `schedule pause|resume` find it by name
    paused = cli("schedule", "pause", name, env=remote)
    assert paused.returncode == 0 and f"paused pipeline schedule {name}" in paused.stderr, paused.stderr
    assert pipeline_schedules.get(name).paused
    assert cli("schedule", "resume", name, env=remote).returncode == 0
    assert not pipeline_schedules.get(name).paused
    missing = cli("schedule", "pause", f"no-{name}", env=remote)
    assert missing.returncode == 2 and f"no schedule named 'no-{name}'" in missing.stderr, missing.stderr
    gone = cli("pipeline", "unschedule", name, env=remote)
    assert gone.returncode == 0, gone.stderr
    assert name not in cli("schedule", "list", env={**remote, "COLUMNS": "250"}).stdout
