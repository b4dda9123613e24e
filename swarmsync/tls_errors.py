"""`TLSError`, apart from `tls.py` (which loads `cryptography`) so that the CLI maps it to an exit code without
loading it."""

from __future__ import annotations

from swarmsync.errors import InvalidError


class TLSError(InvalidError):
    """A certificate could not be made, read or trusted; the message says which file or server and why."""
