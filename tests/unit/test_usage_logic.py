"""What a job used, from the kernel's and Docker's own formats (swarmsync/usage.py), and the month a
project's budget counts (swarmsync/usage_report.py). The real measurement: tests/security/test_usage.py."""

from __future__ import annotations

from datetime import UTC, datetime

from swarmsync.usage import Usage, _io_v1, _io_v2, from_engine_stats, total
from swarmsync.usage_report import _hours, month_bounds

IO_STAT_V2 = "8:0 rbytes=4096 wbytes=1048576 rios=1 wios=8 dbytes=0 dios=0\n259:0 rbytes=1000 wbytes=24 rios=2 wios=3\n"
BLKIO_V1 = "8:0 Read 4096\n8:0 Write 1048576\n8:0 Sync 1052672\n8:0 Total 1052672\n259:0 Read 1000\nTotal 1052672\n"


def test_block_io_sums_every_device_of_cgroup_v1_and_v2():
    assert _io_v2(IO_STAT_V2) == (5096, 1048600)
    assert _io_v1(BLKIO_V1) == (5096, 1048576)


def test_engine_stats_give_cpu_seconds_the_largest_memory_and_every_network():
    stats = {"read": "2026-12-06T23:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}},
             "memory_stats": {"usage": 1000, "max_usage": 5000},
             "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 7}, {"op": "Write", "value": 9},
                                                            {"op": "Total", "value": 16}]},
             "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 50}, "eth1": {"rx_bytes": 1, "tx_bytes": 2}}}
    used = from_engine_stats(stats, Usage(memory_peak_bytes=9000))
    assert used == Usage(cpu_seconds=2.5, memory_peak_bytes=9000, block_read_bytes=7, block_write_bytes=9,
                         net_rx_bytes=101, net_tx_bytes=52, source="engine-stats")
    cgroup_v2_stats = {**stats, "memory_stats": {"usage": 3000}}  # no max_usage on cgroup v2: the largest read
    assert from_engine_stats(cgroup_v2_stats, Usage()).memory_peak_bytes == 3000


def test_a_group_sums_its_containers_and_keeps_the_jobs_wall_time():
    main = Usage(1.5, 100, 1, 2, 3, 4, 9.0, "cgroup")
    service = Usage(0.5, 50, 1, 1, 1, 1, 9.0, "cgroup")
    assert total([main, service], 10.0) == Usage(2.0, 150, 2, 3, 4, 5, 10.0, "cgroup")
    assert total([Usage()], 1.0).source == "none"
    assert Usage.from_dict(main.as_dict()) == main and Usage.from_dict(None) is None


def test_a_budget_month_is_the_calendar_month_in_utc():
    assert month_bounds(datetime(2026, 12, 6, 23, 59, tzinfo=UTC)) == (datetime(2026, 12, 1, tzinfo=UTC),
                                                                      datetime(2027, 1, 1, tzinfo=UTC))
    assert month_bounds(datetime(2027, 1, 31, 12, tzinfo=UTC))[1] == datetime(2027, 2, 1, tzinfo=UTC)
    assert (_hours(10.24), _hours(0.00056), _hours(0.0)) == ("10.2", "0.00056", "0.0")


def test_a_cgroup_is_used_only_when_it_names_the_container(tmp_path):
    from swarmsync.usage import cgroup_paths

    mine = "1" * 64
    for controller in ("cpuacct", "memory", "blkio"):
        (tmp_path / controller / "docker" / mine).mkdir(parents=True)
    assert cgroup_paths(1, mine, tmp_path) is None  # this test's own process: not the container's cgroup
