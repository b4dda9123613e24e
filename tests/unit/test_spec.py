"""JobSpec validation: bad input refused with a message that says what is wrong."""

import pytest
from pydantic import ValidationError

from swarmsync.policy import HostPolicy
from swarmsync.spec import InputFile, JobSpec, JobSpecError, parse_image, parse_memory


@pytest.mark.parametrize(
    "value,expected",
    [("512m", 512 * 2**20), ("1g", 2**30), ("1.5GiB", int(1.5 * 2**30)), ("64MB", 64 * 2**20), (10**7, 10**7)],
)
def test_memory_units_are_understood(value, expected):
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value", ["12 parsecs", "-5m", "m", "1x", "1k"])
def test_bad_memory_is_refused(value):
    with pytest.raises(JobSpecError):
        parse_memory(value)


@pytest.mark.parametrize(
    "ref", ["busybox", "busybox:1.36", "ghcr.io/org/app:v1", "localhost:5000/a/b", f"app@sha256:{'a' * 64}"]
)
def test_valid_image_references(ref):
    assert JobSpec(image=ref).image == ref


@pytest.mark.parametrize("ref", ["", "Busybox", "a b", "app@sha256:123", "app:", "-app"])
def test_invalid_image_references_are_refused(ref):
    with pytest.raises(ValidationError, match="image"):
        JobSpec(image=ref)


def test_digest_is_parsed():
    assert parse_image(f"x/y:t@sha256:{'b' * 64}") == ("x/y", "t", f"sha256:{'b' * 64}")


def test_negative_limits_are_refused():
    for field, value in (("cpu", -1), ("pids_limit", 0), ("timeout", -3)):
        with pytest.raises(ValidationError, match=field):
            JobSpec(image="busybox", **{field: value})


def test_empty_commands_are_refused():
    with pytest.raises(ValidationError, match="empty"):
        JobSpec(image="busybox", command="  ")
    with pytest.raises(ValidationError, match="non-empty list"):
        JobSpec(image="busybox", command=[])


def test_shell_string_becomes_sh_c():
    assert JobSpec(image="busybox", command="echo $HOME").docker_command() == ["/bin/sh", "-c", "echo $HOME"]


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationError, match="memroy"):
        JobSpec(image="busybox", memroy="1g")


def test_input_file_needs_absolute_path_and_hex_digest():
    with pytest.raises(ValidationError, match="absolute"):
        InputFile.from_bytes("relative/x", b"x")
    with pytest.raises(ValidationError, match="absolute"):
        InputFile.from_bytes("/a/../../etc/passwd", b"x")
    with pytest.raises(ValidationError, match="64 hex"):
        InputFile(path="/x", sha256="abc", content_b64="")


def test_public_dict_drops_secret_values_and_inline_bytes():
    spec = JobSpec(image="busybox", secrets={"TOKEN": "block-name"}, inputs=[InputFile.from_bytes("/i", b"x")])
    public = spec.public_dict()
    assert public["secrets"] == ["TOKEN"]
    assert "content_b64" not in public["inputs"][0]


def test_policy_names_the_limit_exceeded():
    policy = HostPolicy(max_memory="1g", max_cpu=2)
    with pytest.raises(JobSpecError, match="max_memory"):
        policy.check(JobSpec(image="busybox", memory="2g"))
    with pytest.raises(JobSpecError, match="max_cpu"):
        policy.check(JobSpec(image="busybox", cpu=4))
    with pytest.raises(JobSpecError, match="allow_privileged"):
        policy.check(JobSpec(image="busybox", privileged=True))
    HostPolicy(allow_privileged=True).check(JobSpec(image="busybox", privileged=True))


def test_a_job_run_name_is_its_image_and_command_trimmed_with_a_schedule_first():
    from swarmsync.spec import RUN_NAME_CHARS, JobSpec, job_run_name

    assert job_run_name(JobSpec(image="docker.io/library/busybox", command=["echo", "hi there"])) == \
        "busybox echo 'hi there'"
    assert job_run_name({"image": "busybox", "command": "sh -c 'date;\n echo x'"}, "nightly") == \
        "nightly: busybox sh -c 'date; echo x'"
    long = job_run_name({"image": "img", "command": ["echo", "x" * 200]})
    assert len(long) == RUN_NAME_CHARS and long.endswith("…")
    assert job_run_name({"image": "img"}) == "img"


def test_a_runs_name_comes_from_its_job_parameter_and_its_schedule_tag():
    from swarmsync.spec import JobSpec, job_run_name, run_name_of

    spec = JobSpec(image="busybox", command=["echo", "hi"], env={"A": "1"})
    submitted = {"job": spec.model_dump(mode="json", exclude_defaults=True)}  # as swarmsync.submit stores it
    assert run_name_of(submitted, ["team-a"]) == job_run_name(spec) == "busybox echo hi"  # no rename needed
    assert run_name_of(submitted, ["swarmsync-schedule:nightly", "x"]) == "nightly: busybox echo hi"
    assert run_name_of({}, None) == "?"
