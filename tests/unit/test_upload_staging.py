"""Core's staging of archive uploads (`swarmsync.archive.staging`) on a real folder: chunks appended only
whole, checked and at the held size; manifests checked before anything is stored; given-up uploads swept.
The routes, the store and the index around it: tests/archives/test_core_uploads.py."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import pytest

from swarmsync.archive import staging


@pytest.fixture
def home(tmp_path, monkeypatch):
    from swarmsync.settings import get_settings

    monkeypatch.setenv("SWARMSYNC_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_chunks_are_appended_only_checked_and_at_the_held_size(home):
    run = str(uuid.uuid4())
    assert staging.held(run, "files.tar.gz") == 0
    with pytest.raises(staging.ChunkCorrupt):
        staging.append(run, "files.tar.gz", 0, b"\x00" * 10, sha(b"other"))
    assert staging.held(run, "files.tar.gz") == 0
    assert staging.append(run, "files.tar.gz", 0, b"\x00" * 10, sha(b"\x00" * 10)) == 10
    with pytest.raises(staging.OffsetMismatch) as behind:
        staging.append(run, "files.tar.gz", 0, b"abc", sha(b"abc"))
    assert behind.value.size == 10
    assert staging.append(run, "services/db/stdout.txt", 0, b"ready\n", sha(b"ready\n")) == 6
    assert (home / "uploads" / run / "services" / "db" / "stdout.txt").read_bytes() == b"ready\n"
    with pytest.raises(LookupError):
        staging.append(run, "../../etc/passwd", 0, b"x", sha(b"x"))


def test_a_manifest_is_checked_before_anything_is_stored():
    run = str(uuid.uuid4())
    good = {"job_id": run, "state": "COMPLETED", "files": {"output.txt": {"size": 3, "sha256": sha(b"abc")}}}
    assert staging.parse_manifest(run, json.dumps(good).encode())["files"]["output.txt"]["size"] == 3
    bad = [
        b"not json", b"[]",
        json.dumps({**good, "job_id": str(uuid.uuid4())}).encode(),
        json.dumps({**good, "state": ""}).encode(),
        json.dumps({**good, "files": {"evil.sh": {"size": 1, "sha256": sha(b"x")}}}).encode(),
        json.dumps({**good, "files": {"manifest.json": {"size": 1, "sha256": sha(b"x")}}}).encode(),
        json.dumps({**good, "files": {"output.txt": {"size": -1, "sha256": sha(b"x")}}}).encode(),
        json.dumps({**good, "files": {"output.txt": {"size": 1, "sha256": "XYZ"}}}).encode(),
        json.dumps({**good, "state": "x" * 33}).encode(),
        json.dumps({**good, "finished_at": "yesterday"}).encode(),
    ]
    for body in bad:
        with pytest.raises(staging.ManifestInvalid):
            staging.parse_manifest(run, body)


def test_uploads_given_up_long_ago_are_swept_and_live_ones_kept(home):
    old, live = str(uuid.uuid4()), str(uuid.uuid4())
    staging.append(old, "output.txt", 0, b"abc", sha(b"abc"))
    staging.append(live, "output.txt", 0, b"abc", sha(b"abc"))
    long_ago = time.time() - staging.STALE_AFTER_SECONDS - 60
    for path in (home / "uploads" / old, home / "uploads" / old / "output.txt"):
        os.utime(path, (long_ago, long_ago))
    (home / "uploads" / "not-a-run").mkdir()
    assert staging.sweep_stale(force=True) == [old]
    assert not (home / "uploads" / old).exists() and (home / "uploads" / live / "output.txt").exists()
    assert (home / "uploads" / "not-a-run").exists()
