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
