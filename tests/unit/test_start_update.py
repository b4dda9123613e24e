"""`swarmsync.start_update`: which of a run's two start PATCHes is sent, in every order (the logic alone; the
real worker against a real Prefect server: tests/security/test_faults.py, one PATCH per run)."""

from types import SimpleNamespace
from uuid import uuid4

import anyio
import pytest

from swarmsync.start_update import StartUpdates


class Client:
    """Records what reaches the server; `fail` makes the next call raise."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.fail = False

    async def update_flow_run(self, flow_run_id, **fields):
        await anyio.sleep(0.01)
        if self.fail:
            self.fail = False
            raise RuntimeError("503")
        self.sent.append({"id": flow_run_id, **fields})
        return "response"


def started(client: Client) -> tuple[StartUpdates, object]:
    updates = StartUpdates()
    updates.install(client)
    run = uuid4()
    updates.expect(run, infrastructure_pid="host:1:run", flow_version="v1", empirical_policy={"retries": 0})
    return updates, run


@pytest.mark.parametrize("worker_first", [True, False])
def test_the_first_call_writes_all_three_and_the_second_is_not_sent(worker_first):
    client = Client()
    _, run = started(client)

    async def main():
        async with anyio.create_task_group() as tg:  # at once: the second waits for the first's answer
            worker = client.update_flow_run(flow_run_id=run, infrastructure_pid="host:1:run")
            engine = client.update_flow_run(flow_run_id=run, flow_version="v1", empirical_policy={"retries": 0})
            first, second = (worker, engine) if worker_first else (engine, worker)
            tg.start_soon(lambda: first)
            await anyio.sleep(0)
            tg.start_soon(lambda: second)

    anyio.run(main)
    assert client.sent == [{"id": run, "infrastructure_pid": "host:1:run", "flow_version": "v1",
                            "empirical_policy": {"retries": 0}}]


def test_a_second_call_with_other_values_is_sent():
    client = Client()
    _, run = started(client)

    async def main():
        await client.update_flow_run(run, infrastructure_pid="host:1:run")
        await client.update_flow_run(run, flow_version="v2", empirical_policy={"retries": 0})

    anyio.run(main)
    assert [sorted(c) for c in client.sent] == [["empirical_policy", "flow_version", "id", "infrastructure_pid"],
                                                ["empirical_policy", "flow_version", "id"]]
    assert client.sent[1]["flow_version"] == "v2"


def test_when_the_first_call_fails_the_second_sends_its_own_fields():
    client = Client()
    _, run = started(client)
    client.fail = True

    async def main():
        with pytest.raises(RuntimeError):
            await client.update_flow_run(run, infrastructure_pid="host:1:run")
        await client.update_flow_run(run, flow_version="v1", empirical_policy={"retries": 0})

    anyio.run(main)
    assert client.sent == [{"id": run, "flow_version": "v1", "empirical_policy": {"retries": 0}}]


def test_runs_not_expected_and_other_fields_pass_through():
    client = Client()
    updates, run = started(client)
    other = uuid4()

    async def main():
        await client.update_flow_run(other, infrastructure_pid="x")
        await client.update_flow_run(run, name="renamed")  # not a start field
        updates.forget(run)
        await client.update_flow_run(run, infrastructure_pid="host:1:run")

    anyio.run(main)
    assert client.sent == [{"id": other, "infrastructure_pid": "x"}, {"id": run, "name": "renamed"},
                           {"id": run, "infrastructure_pid": "host:1:run"}]


def test_the_engines_policy_fills_what_the_run_does_not_set():
    from prefect.client.schemas.objects import FlowRunPolicy

    from swarmsync.start_update import engine_policy

    flow = SimpleNamespace(retries=2, retry_delay_seconds=5)
    run = SimpleNamespace(empirical_policy=FlowRunPolicy())
    assert (engine_policy(run, flow).retries, engine_policy(run, flow).retry_delay) == (2, 5)
    assert run.empirical_policy.retries is None  # a copy: the run's own policy is the engine's to change
    run = SimpleNamespace(empirical_policy=FlowRunPolicy(retries=1, retry_delay=0))
    assert (engine_policy(run, flow).retries, engine_policy(run, flow).retry_delay) == (1, 0)
