"""Checks shared by the pipeline tests: a step's secret value is nowhere SwarmSync keeps or shows it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from swarmsync.archive.reader import read_archive_file, read_manifest
from swarmsync.jobs import Job
from swarmsync.pipeline_inputs import read_output_folder
from swarmsync.pipelines import Pipeline, read_children


def secret_step(busybox: str, value: str) -> dict:
    """A step that gets `value` as $TOKEN (secret_env) and writes only its SHA-256 to its output folder."""
    return {"image": busybox, "pull_policy": "never", "output_dir": "/out", "secret_env": {"TOKEN": value},
            "command": ["sh", "-c", 'mkdir -p /out && printf %s "$TOKEN" | sha256sum | cut -c1-64 > /out/sha.txt '
                        '&& test -n "$TOKEN" && echo token-seen']}


def assert_secret_nowhere(pipeline: Pipeline, step: str, value: str) -> Job:
    """The step ran with $TOKEN = `value` (its archived sha.txt is the value's SHA-256), and `value` is in
    none of: the parent's and the step's parameters, the step's log lines, its archived files and manifest."""
    parent = pipeline.flow_run()
    assert value not in json.dumps(parent.parameters), "the pipeline's parameters hold the secret"
    child = next(c for c in read_children(pipeline.id) if (c.tags or []) and f"swarmsync.step:{step}" in c.tags)
    assert value not in json.dumps(child.parameters), "the step's parameters hold the secret"
    secrets = child.parameters["job"]["secrets"]
    assert list(secrets) == ["TOKEN"] and secrets["TOKEN"].startswith("swarmsync-secret-"), secrets
    job = Job(child.id)
    lines = job.logs()
    assert any("token-seen" in message for _ts, _name, message in lines), lines
    assert not [m for _ts, _n, m in lines if value in m], "a log line holds the secret"
    manifest = read_manifest(str(child.id))
    assert value not in json.dumps(manifest), "the archive's manifest holds the secret"
    for name in manifest.get("files", {}):
        data = read_archive_file(str(child.id), name)
        data = gzip.decompress(data) if name.endswith(".gz") else data
        assert value.encode() not in data, f"archived {name} holds the secret"
    with tarfile.open(fileobj=io.BytesIO(read_output_folder(str(child.id))), mode="r:gz") as tar:
        folder = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    sha = next((data for name, data in folder.items() if name.endswith("sha.txt")), None)
    assert sha is not None, f"no sha.txt in the step's output folder: {sorted(folder)}"
    assert sha.strip() == hashlib.sha256(value.encode()).hexdigest().encode(), "the container saw another value"
    return job
