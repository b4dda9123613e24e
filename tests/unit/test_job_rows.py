"""A job's row as the API sends it (`JobRow`, a dataclass pydantic validates and documents) reads back the same:
through the API as a `JobRow` with its flow run (pydantic), and as a `JobSummary` without pydantic (what
`swarmsync jobs` and `status` read, so they start without it: docs/benchmarks.md, CLI start)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import uuid4

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prefect.client.schemas.objects import FlowRun, State, StateType

from swarmsync.job_rows import JobSummary
from swarmsync.jobs import JobRow


def a_row() -> JobRow:
    """A finished job with every field set."""
    start = datetime(2026, 12, 1, 9, 0, 0, 250_000, tzinfo=UTC)
    run = FlowRun(flow_id=uuid4(), tags=["nightly", "swarmsync.user:alice", "swarmsync.project:data"],
                  parameters={"job": {"image": "busybox", "command": ["sh", "-c", "exit 3"]}},
                  state=State(type=StateType.FAILED, name="Failed", message="container exited (exit code 3)"),
                  created=start, expected_start_time=start, start_time=start,
                  end_time=start.replace(second=4), work_queue_name="fast")
    return JobRow.from_flow_run(run)


def served(row: JobRow) -> dict:
    """The row as `GET /jobs/{id}` sends it (FastAPI with `JobRow` as the response model)."""
    app = FastAPI()
    app.get("/job", response_model=JobRow)(lambda: row)
    return TestClient(app).get("/job").json()


def test_a_row_reads_back_the_same_with_and_without_pydantic():
    row = a_row()
    body = served(row)
    assert (row.user, row.project, row.exit_code, row.queue, row.final) == ("alice", "data", 3, "fast", True)
    summary = JobSummary.from_api(body)
    assert summary == JobSummary(**{f.name: getattr(row, f.name) for f in dataclasses.fields(JobSummary)})
    again = JobRow.from_api(body)
    assert again == row and again.flow_run.id == row.flow_run.id


def test_the_api_schema_describes_the_fields_and_requires_id_state_and_flow_run():
    app = FastAPI()
    app.get("/job", response_model=JobRow)(a_row)
    schema = app.openapi()["components"]["schemas"]["JobRow"]
    assert set(schema["required"]) == {"id", "state", "flow_run"}
    described = {name for name, field in schema["properties"].items() if field.get("description")}
    assert {"state", "final", "user", "project", "command", "scheduled", "exit_code", "flow_run"} <= described
