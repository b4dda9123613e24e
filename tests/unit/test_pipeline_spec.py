"""The pipeline file's rules (swarmsync/pipeline_spec.py) and the output-folder hand-over
(swarmsync/pipeline_inputs.py), without a server."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile

import pytest

from swarmsync.pipeline_inputs import HandoffError, folder_inputs
from swarmsync.pipeline_spec import PipelineError, parse_pipeline

ISSUE_EXAMPLE = """
name: nightly-report
steps:
  fetch:
    image: busybox
    command: ["sh", "-c", "mkdir -p /out && echo 42 > /out/n.txt"]
    output_dir: /out
  report:
    needs: [fetch]
    image: busybox
    inputs_from: {fetch: /in}
    command: ["sh", "-c", "cat /in/n.txt"]
  cleanup:
    needs: [report]
    when: failure
    image: busybox
    command: ["echo", "cleaning up"]
"""


def test_the_issue_example_resolves_in_order():
    resolved = parse_pipeline(ISSUE_EXAMPLE).resolve()
    assert [s.name for s in resolved.steps] == ["fetch", "report", "cleanup"]
    report = resolved.step("report")
    assert report.needs == ["fetch"] and report.inputs_from == {"fetch": "/in"} and report.when == "success"
    assert resolved.step("cleanup").when == "failure" and resolved.step("fetch").job.output_dir == "/out"
    assert resolved.edges() == [("fetch", "report"), ("report", "cleanup")]


def _refused(steps: dict, where: str) -> str:
    with pytest.raises(PipelineError) as caught:
        parse_pipeline_dict({"name": "p", "steps": steps}).resolve()
    assert where in caught.value.errors, caught.value.errors
    return caught.value.errors[where]


def parse_pipeline_dict(data: dict):
    from swarmsync.pipeline_spec import load_pipeline

    return load_pipeline(data)


def test_cycles_unknown_needs_and_bad_inputs_are_refused_by_field():
    assert "cycle: a -> b -> c -> a" in _refused({"a": {"image": "busybox", "needs": ["b"]},
                                                  "b": {"image": "busybox", "needs": ["c"]},
                                                  "c": {"image": "busybox", "needs": ["a"]}}, "steps.a.needs")
    assert "'ghost' is not a step" in _refused({"a": {"image": "busybox", "needs": ["ghost"]}}, "steps.a.needs")
    assert "needs itself" in _refused({"a": {"image": "busybox", "needs": ["a"]}}, "steps.a.needs")
    out = {"image": "busybox", "output_dir": "/out"}
    assert "not a step 'b' needs" in _refused({"a": out, "b": {"image": "busybox", "inputs_from": {"a": "/in"}}},
                                              "steps.b.inputs_from")
    assert "no output_dir" in _refused({"a": {"image": "busybox"},
                                        "b": {"image": "busybox", "needs": ["a"], "inputs_from": {"a": "/in"}}},
                                       "steps.b.inputs_from")
    assert "absolute" in _refused({"a": out, "b": {"image": "busybox", "needs": ["a"], "inputs_from": {"a": "in"}}},
                                  "steps.b.inputs_from")
    assert "not a step of this pipeline" in _refused(
        {"a": {"image": "busybox", "inputs_from": {"elsewhere": "/in"}}}, "steps.a.inputs_from")
    assert "image" in _refused({"a": {"image": "Not An Image"}}, "steps.a")


def test_matrix_expands_with_values_in_command_and_env():
    resolved = parse_pipeline_dict({"name": "m", "max_parallel": 2, "steps": {
        "build": {"image": "busybox", "command": "echo ${{ matrix.region }}-${{matrix.n}}",
                  "env": {"R": "${{ matrix.region }}"}, "matrix": {"region": ["eu", "us"], "n": [1, 2]}},
        "ship": {"image": "busybox", "needs": ["build"]},
    }}).resolve()
    names = [s.name for s in resolved.steps]
    assert names[:4] == ["build[region=eu,n=1]", "build[region=eu,n=2]", "build[region=us,n=1]",
                         "build[region=us,n=2]"]
    assert resolved.step("build[region=us,n=2]").job.command == "echo us-2"
    assert resolved.step("build[region=us,n=2]").job.env == {"R": "us"}
    assert resolved.step("ship").needs == names[:4]


def test_an_unknown_matrix_key_is_refused():
    assert "no matrix key 'zone'" in _refused(
        {"a": {"image": "busybox", "command": "echo ${{ matrix.zone }}", "matrix": {"region": ["eu"]}}},
        "steps.a.command")


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_an_output_folder_becomes_checksummed_input_files_under_the_mount():
    files = folder_inputs(_tar_gz({"out/n.txt": b"42\n", "out/sub/x.bin": b"\x00\x01"}), "/in")
    assert [(f.path, f.sha256) for f in files] == [("/in/n.txt", hashlib.sha256(b"42\n").hexdigest()),
                                                   ("/in/sub/x.bin", hashlib.sha256(b"\x00\x01").hexdigest())]
    assert base64.b64decode(files[0].content_b64) == b"42\n"
    with pytest.raises(HandoffError, match="larger than"):
        folder_inputs(_tar_gz({"out/big": b"x" * 100}), "/in", limit=10)
    with pytest.raises(HandoffError, match="not a plain file"):
        folder_inputs(_tar_gz({"out/../../etc/passwd": b"x"}), "/in")


def test_the_dashboards_dag_has_a_box_per_step_and_an_arrow_per_need():
    from swarmsync.dashboard.pipeline_graph import COLOURS, pipeline_dot

    dot = pipeline_dot({"steps": [
        {"name": "fetch", "group": "fetch", "state": "Completed", "needs": [], "when": "success"},
        {"name": 'say "hi"', "group": 'say "hi"', "state": "Failed", "needs": ["fetch"], "when": "success",
         "inputs_from": {"fetch": "/in"}, "attempts": 2},
        {"name": "cleanup", "group": "cleanup", "state": "Skipped", "needs": ['say "hi"'], "when": "failure"},
    ]})
    assert '"fetch" [label="fetch\\nCompleted", fillcolor="' + COLOURS["Completed"] + '"];' in dot
    assert '"say \\"hi\\"" [label="say \\"hi\\"\\nFailed (x2)"' in dot  # quotes escaped
    assert '"fetch" -> "say \\"hi\\"" [label="/in", penwidth=2];' in dot
    assert '"say \\"hi\\"" -> "cleanup" [style=dashed, label="failure"];' in dot


def test_secret_env_values_stay_out_of_the_resolved_pipeline():
    """A step's `secret_env` values are taken out at resolution: its secrets name the placeholder for a
    block of the submitter's, stored only once every step is admitted."""
    from swarmsync.auth.secret_owners import NEW_SECRET
    from swarmsync.pipeline_secrets import secret_values
    from swarmsync.pipeline_spec import load_pipeline
    from swarmsync.pipelines import resolve

    data = {"name": "s", "steps": {"pub": {"image": "busybox", "secret_env": {"TOKEN": "v4lue"},
                                           "matrix": {"n": [1, 2]}}}}
    resolved = resolve(data)
    assert [s.job.secrets for s in resolved.steps] == [{"TOKEN": NEW_SECRET}] * 2
    assert "v4lue" not in resolved.model_dump_json()
    assert secret_values(load_pipeline(data)) == {"pub": {"TOKEN": "v4lue"}}


@pytest.mark.parametrize(("secret_env", "where"), [
    (["TOKEN"], "steps.pub.secret_env"),
    ({"1BAD": "x"}, "steps.pub.secret_env"),
    ({"TOKEN": 5}, "steps.pub.secret_env.TOKEN"),
])
def test_a_bad_secret_env_is_refused_naming_its_step(secret_env, where):
    from swarmsync.pipelines import resolve

    with pytest.raises(PipelineError) as refused:
        resolve({"name": "s", "steps": {"pub": {"image": "busybox", "secret_env": secret_env}}})
    assert list(refused.value.errors) == [where]


def test_a_name_both_in_env_and_secret_env_is_refused():
    from swarmsync.pipelines import resolve

    with pytest.raises(PipelineError, match="both as plain env and as secret_env"):
        resolve({"name": "s", "steps": {"pub": {"image": "busybox", "env": {"T": "a"}, "secret_env": {"T": "b"}}}})
