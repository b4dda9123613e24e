"""The errors of account requests, apart from `users.py` so that the CLI maps them without loading the database."""

from __future__ import annotations


class AccountError(ValueError):
    """A request about accounts that cannot be done as asked (message says why)."""


class UserNotFound(LookupError):
    pass
