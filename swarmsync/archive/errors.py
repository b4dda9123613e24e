"""What can go wrong with an archive, by meaning: not there, not what was written, store unusable."""

from __future__ import annotations

from swarmsync.errors import Error, NotFoundError, UnavailableError


class ArchiveNotFound(NotFoundError):
    """No archive for that job (yet): it may still be running, or the id is wrong."""


class ArchiveCorrupt(Error, RuntimeError):
    """An archived file (or the manifest) does not match its SHA-256: never served as if it did."""


class ArchiveStoreError(UnavailableError, RuntimeError):
    """The archive store cannot be reached or is misconfigured (the message never holds credentials)."""
