"""`checked_chunks`: a download passed on chunk by chunk while it is hashed, its last chunk held back until size
and SHA-256 match the manifest. Apart from `reader.py` (which reads stores, and imports Prefect) because the
API client checks its downloads with it too (`swarmsync.Client.iter_archive_file`: `swarmsync result` through
the API starts without Prefect)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from swarmsync.archive.errors import ArchiveCorrupt


def checked_chunks(chunks: Iterator[bytes], meta: dict[str, Any], what: str) -> Iterator[bytes]:
    """`chunks` passed on, hashed; the last one only once size and SHA-256 match `meta`, else ArchiveCorrupt."""
    digest, size, held = hashlib.sha256(), 0, None
    for block in chunks:
        digest.update(block)
        size += len(block)
        if held is not None:
            yield held
        held = block
    if digest.hexdigest() != meta["sha256"] or size != meta["size"]:
        raise ArchiveCorrupt(f"{what} does not match its manifest: sha256 {digest.hexdigest()} "
                             f"({size} bytes), expected {meta['sha256']} ({meta['size']} bytes)")
    if held is not None:
        yield held
