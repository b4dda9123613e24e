"""The archive's download check and store descriptions (pure logic; the real stores are
tested in tests/archives/)."""

from __future__ import annotations

import hashlib

import pytest

from swarmsync.archive import ArchiveCorrupt, checked_chunks, public_url


def meta(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def test_matching_chunks_pass_through_whole():
    chunks = [b"abc", b"def", b"g"]
    assert list(checked_chunks(iter(chunks), meta(b"abcdefg"), "f")) == chunks
    assert list(checked_chunks(iter([]), meta(b""), "empty")) == []


@pytest.mark.parametrize("received", [[b"abc", b"deX", b"g"], [b"abc", b"def"], [b"abc", b"def", b"g", b"h"]])
def test_a_mismatch_raises_before_the_last_chunk_is_given(received):
    given = []
    with pytest.raises(ArchiveCorrupt, match="does not match its manifest"):
        for chunk in checked_chunks(iter(received), meta(b"abcdefg"), "output.txt"):
            given.append(chunk)
    assert given == received[:-1], "the last chunk must be held back until the hash matches"


def test_store_urls_never_show_a_password():
    assert public_url("sftp://alice:s3cret@host:2222/srv/archive") == "sftp://alice@host:2222/srv/archive"
    assert public_url("s3://bucket/prefix") == "s3://bucket/prefix"
    assert public_url("sftp://alice@host/srv") == "sftp://alice@host/srv"
