"""The worker's console lines when they go to a file: plain StreamHandler lines, the same text as Prefect's."""

from __future__ import annotations

import logging
import os

from prefect.logging.handlers import PrefectConsoleHandler

from swarmsync.console_logs import plain_when_not_a_terminal

FORMAT = logging.Formatter("%(levelname)-7s | %(name)s - %(message)s")


def _logger(name: str, stream) -> tuple[logging.Logger, PrefectConsoleHandler]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers.clear()
    handler = PrefectConsoleHandler(stream=stream, level=logging.INFO)
    handler.setFormatter(FORMAT)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, handler


def test_a_console_handler_writing_to_a_file_becomes_a_plain_one_writing_the_same_lines(tmp_path):
    lines = ["Worker 'w-1' submitting flow run '0d3a9c4e'", "Finished in state Completed('exit code 0')",
             "job: busybox:latest echo :smile: [bold]x[/bold] http://127.0.0.1:4200/runs " + "long " * 30]
    with open(tmp_path / "rich.log", "w") as rich_file:
        logger, _ = _logger("swarmsync.test.rich", rich_file)
        for line in lines:
            logger.info(line)
    with open(tmp_path / "plain.log", "w") as plain_file:
        logger, handler = _logger("swarmsync.test.plain", plain_file)
        marker = logging.Filter("swarmsync.test")
        handler.addFilter(marker)
        assert plain_when_not_a_terminal(logger) == 1
        [plain] = logger.handlers
        assert type(plain) is logging.StreamHandler and plain.stream is plain_file
        assert plain.level == logging.INFO and plain.formatter is FORMAT and plain.filters == [marker]
        for line in lines:
            logger.info(line)
        logger.debug("below the handler's level")
    rich = (tmp_path / "rich.log").read_text().replace("swarmsync.test.rich", "NAME")
    assert (tmp_path / "plain.log").read_text().replace("swarmsync.test.plain", "NAME") == rich.replace("😄", ":smile:")
    assert (tmp_path / "plain.log").read_text().count("\n") == 3


def test_a_console_handler_on_a_terminal_is_kept():
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        logger, handler = _logger("swarmsync.test.tty", terminal)
        assert plain_when_not_a_terminal(logger) == 0
        assert logger.handlers == [handler]
    os.close(leader)
