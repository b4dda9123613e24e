"""The worker's console log lines when nobody reads them on a terminal.

Prefect's console handler renders every line with Rich (highlighting, emoji codes, styles): ~0.13 ms per line
on this project's machine, ~9 lines per job, ~2% of a worker's CPU per job. When its stream is not a terminal
(`swarmsync up` writes each process's output to `logs/NAME.log`; systemd, Docker and Kubernetes to their logs)
nothing of that rendering shows: the same formatted lines are written by Python's own StreamHandler instead.
"""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler


def plain_when_not_a_terminal(logger: logging.Logger | None = None) -> int:
    """Replace each of `logger`'s (default: the root logger's) Prefect console handlers whose stream is not a
    terminal with a StreamHandler of the same stream, level, formatter and filters; returns how many."""
    logger = logger or logging.getLogger()
    replaced = 0
    for handler in list(logger.handlers):
        if not isinstance(handler, PrefectConsoleHandler) or _is_terminal(handler.stream):
            continue
        plain = logging.StreamHandler(handler.stream)
        plain.setLevel(handler.level)
        plain.setFormatter(handler.formatter)
        for log_filter in handler.filters:
            plain.addFilter(log_filter)
        logger.removeHandler(handler)
        logger.addHandler(plain)
        replaced += 1
    return replaced


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
