"""Routing by host labels (swarmsync.routing) and the HAProxy front of Prefect's HA shape."""

from __future__ import annotations

import pytest

from swarmsync.routing import label_options, queue_for, worker_queues


def test_a_job_requiring_labels_goes_to_the_queue_named_for_all_of_them():
    assert queue_for([]) == "default"
    assert queue_for(["region=eu", "gpu", "gpu"]) == "gpu+region=eu"


def test_a_worker_polls_default_and_every_combination_of_its_labels():
    assert worker_queues([]) == ["default"]
    assert worker_queues(["region=eu", "gpu"]) == ["default", "gpu", "region=eu", "gpu+region=eu"]
    # a worker with labels {gpu, region=eu} takes every job whose requirements it meets
    mine = set(worker_queues(["gpu", "region=eu", "ssd"]))
    assert {queue_for(["gpu"]), queue_for(["ssd", "gpu"]), queue_for(["region=eu", "gpu", "ssd"])} <= mine
    assert queue_for(["region=us"]) not in mine


@pytest.mark.parametrize("bad", ["a+b", "a/b", "with space", "x" * 61])
def test_labels_that_would_make_queue_names_ambiguous_are_refused(bad):
    with pytest.raises(ValueError):
        worker_queues([bad])


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
