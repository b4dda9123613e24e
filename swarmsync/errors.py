"""`swarmsync.Error`: the one base of every exception SwarmSync defines, and its kinds by meaning.

    try:
        job = swarmsync.get_job(job_id)
    except swarmsync.NotFoundError:
        ...

Each exception the project defines derives from `Error`, most through one of the five kinds
below (what went wrong, in the caller's words). One that always derived from a standard
exception keeps it too (`JobNotFound` is a `NotFoundError` and still a `LookupError`;
`JobSpecError` an `InvalidError` and still a `ValueError`), so `except LookupError` or
`except ValueError` written before the family still catches what it caught.

One place maps each kind onto an answer: HTTP statuses in `swarmsync/api/errors.py`
(`STATUS`), CLI exit codes in `swarmsync/cli/console.py` (`EXIT_CODES`); docs/accounts-and-api.md
lists both. A kind is never a reason to catch less: catch the narrow class where the code can
do something about it, and let the rest reach those two places.
"""

from __future__ import annotations


class Error(Exception):
    """Anything SwarmSync raises on purpose; a bare `Error` means something failed (a job, a step,
    the stack) rather than a request being wrong."""


class NotFoundError(Error, LookupError):
    """No such object, or none the caller may see (the same answer: existence is not leaked). HTTP 404."""


class RefusedError(Error):
    """The caller may not do this: not logged in, a role or a pool's policy says no, too many attempts.
    HTTP 403 (401 when not authenticated, 429 when locked out)."""


class InvalidError(Error, ValueError):
    """The input cannot be used as given (a bad field, name, file, schedule); the message says what to fix.
    HTTP 400 (422 where the fields are named one by one)."""


class ConflictError(Error):
    """The request does not fit the object's current state: a name taken, a run already ended, a port in use.
    HTTP 409."""


class UnavailableError(Error):
    """A service SwarmSync needs does not answer: an archive store, Core, an image or the engine. HTTP 503."""


KINDS: tuple[type[Error], ...] = (NotFoundError, RefusedError, InvalidError, ConflictError, UnavailableError)
"""The kinds below `Error`; `tests/unit/test_errors.py` checks both maps name each one."""
