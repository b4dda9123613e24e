"""The errors of account requests, apart from `users.py` so that the CLI maps them without loading the database."""

from __future__ import annotations

from swarmsync.errors import InvalidError, NotFoundError


class AccountError(InvalidError):
    """A request about accounts that cannot be done as asked (message says why)."""


class UserNotFound(NotFoundError):
    pass
