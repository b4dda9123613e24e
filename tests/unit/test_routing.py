"""Routing by host labels (swarmsync.routing) and the HAProxy front of Prefect's HA shape."""

from __future__ import annotations

import pytest

from swarmsync.routing import can_take, host_queues, label_options, labels_of_queue, parse_labels, queue_for


def test_a_job_requiring_labels_goes_to_the_host_queue_named_for_all_of_them():
    assert queue_for([]) == "default"
    assert queue_for(["region=eu", "gpu", "gpu"]) == "host:gpu+region=eu"
    assert labels_of_queue("host:gpu+region=eu") == ["gpu", "region=eu"]
    assert labels_of_queue("default") is None and labels_of_queue("nightly") is None


def test_a_worker_takes_host_queues_only_when_it_has_every_label_and_other_queues_always():
    mine = ["gpu", "region=eu", "ssd"]
    for labels in (["gpu"], ["ssd", "gpu"], ["region=eu", "gpu", "ssd"]):
        assert can_take(queue_for(labels), mine)
    assert not can_take(queue_for(["region=us"]), mine)
    assert not can_take(queue_for(["gpu", "region=us"]), mine)
    # an unlabelled worker polling the whole pool takes no host-label job, but every other queue's
    assert not can_take("host:gpu", [])
    assert can_take("default", []) and can_take("nightly", []) and can_take(None, [])
    assert not can_take("host:a b", mine)  # malformed: nobody


def test_the_queues_a_labelled_worker_creates():
    assert host_queues([]) == []
    assert host_queues(["region=eu", "gpu"]) == ["host:gpu", "host:region=eu", "host:gpu+region=eu"]
    assert parse_labels(" gpu, region=eu ,,") == ["gpu", "region=eu"]


@pytest.mark.parametrize("bad", ["a+b", "a/b", "with space", "a,b", "x" * 61])
def test_labels_that_would_make_queue_names_ambiguous_are_refused(bad):
    with pytest.raises(ValueError):
        queue_for([bad])


def test_label_options():
    assert label_options(["gpu", "region=eu"]) == ["--label", "gpu", "--label", "region=eu"]


def test_haproxy_checks_health_and_replays_to_a_live_process(monkeypatch):
    from swarmsync.deployments.stack import ha_backend_ports, haproxy_config
    from swarmsync.settings import SwarmSyncSettings

    settings = SwarmSyncSettings(host="10.0.0.5", port=4200, prefect_api_processes=3)
    assert ha_backend_ports(settings) == [4201, 4202, 4203]
    config = haproxy_config(settings)
    assert "bind 10.0.0.5:4200" in config
    assert "option httpchk GET /api/health" in config
    assert config.count(" check\n") == 3  # every API process health-checked
    assert "retry-on conn-failure empty-response" in config


def test_the_ha_shape_is_refused_without_prefect_on_redis():
    from swarmsync.deployments.stack import StackError, split_server
    from swarmsync.settings import SwarmSyncSettings

    with pytest.raises(StackError, match="needs SWARMSYNC_PREFECT_REDIS_URL"):
        split_server(SwarmSyncSettings(prefect_api_processes=2, prefect_redis_url=None))


@pytest.mark.parametrize(("args", "message"), [
    (["--queue", "nightly", "--require", "gpu"], "give --queue or --require, not both"),
    (["--require", "a+b"], "--require: host label 'a+b'"),
])
def test_submit_refuses_conflicting_or_bad_requirements_before_submitting(args, message):
    from typer.testing import CliRunner

    from swarmsync.cli.main import app

    result = CliRunner().invoke(app, ["submit", *args, "busybox", "true"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_malformed_host_queue_is_refused_at_submission():
    from swarmsync.jobs import check_queue
    from swarmsync.spec import JobSpecError

    check_queue(None), check_queue("nightly"), check_queue("host:gpu+region=eu")
    with pytest.raises(JobSpecError, match="queue 'host:gpu region'"):
        check_queue("host:gpu region")
