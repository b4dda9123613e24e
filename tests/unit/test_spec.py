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


# --- issue 23: bad input is refused at the door; root is decided on numbers --------------------------

ROOT_SPELLINGS = ["root", "0", "00", "000", "0:0", "root:0", "root:root", "1000:0", "1000:root", "0:1000",
                  "app:0", "ROOT"]
ODD_SPELLINGS = ["+0", "-0", "+0:+0", "+00", "-1", "1000:+0", "1000:-0", " 0", "0 ", "1000: 0", "", ":", "1000:",
                 ":1000", "a:b:c", "0x0", "1e3", "\u0660", "1000\n", "app name", "9" * 20]


@pytest.mark.parametrize("user", ROOT_SPELLINGS)
def test_every_root_spelling_is_refused_by_a_pool_without_allow_root_user(user):
    from swarmsync.policy import PolicyViolation, is_root_user

    assert is_root_user(user)
    with pytest.raises(PolicyViolation, match="allow_root_user"):
        HostPolicy().check(JobSpec(image="busybox", user=user))
    with pytest.raises(PolicyViolation, match="allow_root_user"):
        HostPolicy().check(JobSpec(image="busybox", services={"db": {"image": "busybox", "user": user}}))
    assert HostPolicy(allow_root_user=True).check(JobSpec(image="busybox", user=user)).user == user


@pytest.mark.parametrize("user", ODD_SPELLINGS)
def test_user_spellings_docker_would_read_oddly_are_refused_outright(user):
    with pytest.raises(ValidationError, match="user"):
        JobSpec(image="busybox", user=user)
    with pytest.raises(ValidationError, match="user"):
        JobSpec(image="busybox", services={"db": {"image": "busybox", "user": user}})


@pytest.mark.parametrize("user", ["1000", "1000:1000", "65534:65534", "app", "app:staff", "nobody:nogroup",
                                  "_svc", "www-data", "01000"])
def test_plain_non_root_users_are_accepted(user):
    from swarmsync.policy import is_root_user

    assert not is_root_user(user)
    assert HostPolicy().check(JobSpec(image="busybox", user=user)).user == user


@pytest.mark.parametrize("field,value", [("timeout", 1e308), ("timeout", float("inf")), ("timeout", 31 * 86400),
                                         ("pids_limit", 2**63), ("pids_limit", 4_194_305),
                                         ("retry_delay", 1e308), ("cpu", 513)])
def test_numbers_are_bounded(field, value):
    with pytest.raises(ValidationError, match=field):
        JobSpec(image="busybox", **{field: value})
    if field in ("pids_limit", "cpu"):
        with pytest.raises(ValidationError, match=field):
            JobSpec(image="busybox", services={"db": {"image": "busybox", field: value}})


@pytest.mark.parametrize("field,value", [("max_timeout", 1e308), ("default_timeout", 1e308), ("max_pids", 2**63),
                                         ("default_pids_limit", 2**63), ("max_cpu", 1e308)])
def test_pool_numbers_are_bounded(field, value):
    with pytest.raises(ValidationError, match=field):
        HostPolicy(**{field: value})


@pytest.mark.parametrize("name", ["A=B", "BAD NAME", "", "1X", "X-Y", "É"])
def test_env_and_secret_names_must_be_environment_names(name):
    from swarmsync.spec import check_env_names

    with pytest.raises(JobSpecError, match="environment variable name"):
        check_env_names([name])
    with pytest.raises(ValidationError):
        JobSpec(image="busybox", env={name: "x"})
    with pytest.raises(ValidationError):
        JobSpec(image="busybox", secrets={name: "block"})
    assert check_env_names(["HTTP_PROXY", "_x1"]) == ["HTTP_PROXY", "_x1"]


@pytest.mark.parametrize("ref", ["127.0.0.1:4780/x/y:1", "127.0.0.1/x", "127.9.9.9:5000/a", "localhost:5000/a",
                                 "localhost/a", "LOCALHOST:80/a", "app.localhost:80/a", "169.254.169.254/a",
                                 "169.254.0.1:80/a/b", "0.0.0.0:5000/a", "127.1:5000/a", "2130706433:5000/a",
                                 "0x7f.1:5000/a"])
def test_images_from_loopback_link_local_or_unspecified_registries_are_refused_on_every_pool(ref):
    from swarmsync.policy import PolicyViolation

    for policy in (HostPolicy(), HostPolicy(allowed_images=["*"]), HostPolicy(allow_privileged=True)):
        with pytest.raises(PolicyViolation, match="registry"):
            policy.check(JobSpec(image=ref))
    with pytest.raises(PolicyViolation, match="service db: .*registry"):
        HostPolicy().check(JobSpec(image="busybox", services={"db": {"image": ref}}))


def test_a_local_registry_the_pools_allow_list_names_outright_is_allowed():
    """An admin's own choice (a mirror on the worker host): named literally, never by a wildcard."""
    from swarmsync.policy import PolicyViolation

    mirror = HostPolicy(allowed_images=["127.0.0.1:5000/*"])
    assert mirror.check(JobSpec(image="127.0.0.1:5000/team/app:1")).image == "127.0.0.1:5000/team/app:1"
    for policy, ref in ((mirror, "127.0.0.1:5001/team/app"), (HostPolicy(allowed_images=["127.0.0.*:5000/*"]),
                                                               "127.0.0.1:5000/team/app")):
        with pytest.raises(PolicyViolation):
            policy.check(JobSpec(image=ref))


def test_images_from_the_servers_own_addresses_and_name_are_refused():
    import socket

    from swarmsync.policy import PolicyViolation, own_addresses

    own = [a for a in own_addresses() if a.version == 4 and not a.is_loopback]
    assert own, "this host has a non-loopback IPv4 address"
    for ref in (f"{own[0]}:5000/x/y:1", f"{socket.gethostname().lower()}:5000/x"):
        with pytest.raises(PolicyViolation, match="this host"):
            HostPolicy().check(JobSpec(image=ref))


@pytest.mark.parametrize("ref", ["busybox", "busybox:1.36", "ghcr.io/org/app:v1", "registry.example:5000/a/b",
                                 "10.1.2.3:5000/team/app", "docker.io/library/busybox"])
def test_other_registries_pass_on_a_pool_without_an_allow_list(ref):
    assert HostPolicy().check(JobSpec(image=ref)).image == ref


@pytest.mark.parametrize("patterns,ref,allowed", [
    (["busybox"], "busybox", True), (["busybox"], "busybox:1.36", True),
    (["busybox"], "docker.io/library/busybox:1", True), (["busybox"], "index.docker.io/library/busybox", True),
    (["busybox"], "me/busybox", False), (["busybox"], "ghcr.io/x/busybox", False),
    (["docker.io/library/*"], "alpine:3", True), (["docker.io/library/*"], "me/app", False),
    (["ghcr.io/myorg/*"], "ghcr.io/myorg/app:1", True), (["ghcr.io/myorg/*"], "ghcr.io/other/app", False),
    (["registry.example:5000/*"], "registry.example:5000/a/b:2", True),
    (["registry.example:5000/*"], "registry.example/a", False),
    (["busybox:1.36"], "busybox:1.36", True), (["busybox:1.36"], "busybox:latest", False),
    (["*"], "anything/at:all", True), ([], "whatever", True),
])
def test_the_image_allow_list_matches_normalised_names(patterns, ref, allowed):
    from swarmsync.policy import PolicyViolation

    policy = HostPolicy(allowed_images=patterns)
    if allowed:
        policy.check(JobSpec(image=ref))
    else:
        with pytest.raises(PolicyViolation, match="allowed_images"):
            policy.check(JobSpec(image=ref))
        with pytest.raises(PolicyViolation, match="service db: .*allowed_images"):
            policy.check(JobSpec(image=patterns[0].replace("*", "x"), services={"db": {"image": ref}}))


def test_a_pool_may_require_digests():
    from swarmsync.policy import PolicyViolation

    pinned = f"busybox@sha256:{'a' * 64}"
    HostPolicy(require_digest=True, allowed_images=["busybox"]).check(JobSpec(image=pinned))
    with pytest.raises(PolicyViolation, match="require_digest"):
        HostPolicy(require_digest=True).check(JobSpec(image="busybox:1.36"))


def test_a_pools_default_user_applies_to_the_job_and_every_service_that_names_none():
    policy = HostPolicy(default_user="65534:65534")
    spec = policy.check(JobSpec(image="busybox", services={"db": {"image": "busybox"},
                                                           "web": {"image": "busybox", "user": "1000"}}))
    assert spec.user == "65534:65534"
    assert spec.services["db"].user == "65534:65534" and spec.services["web"].user == "1000"
    assert policy.check(JobSpec(image="busybox", user="app")).user == "app"
    assert HostPolicy().check(JobSpec(image="busybox")).user is None
    assert HostPolicy(default_user="0").inconsistencies() == {
        "default_user": "'0' runs as root, which this pool does not allow (allow_root_user)"}
    with pytest.raises(ValidationError, match="default_user"):
        HostPolicy(default_user="+0")


def test_an_images_own_root_user_is_refused_only_where_the_pool_asks():
    policy = HostPolicy(check_image_user=True)
    assert "runs as root" in policy.image_user_refusal("busybox", "", None)
    assert "runs as root" in policy.image_user_refusal("busybox", "0:0", None)
    assert policy.image_user_refusal("busybox", "app", None) is None
    assert policy.image_user_refusal("busybox", "", "1000") is None
    assert HostPolicy().image_user_refusal("busybox", "", None) is None  # busybox images run as root: default pools
    assert HostPolicy(check_image_user=True, allow_root_user=True).image_user_refusal("busybox", "", None) is None
