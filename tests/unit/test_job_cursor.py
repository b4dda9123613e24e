"""Job listing cursors (swarmsync/job_pages.py): what a cursor holds comes back as it was, and anything else is
refused with one message that names nothing of what it read."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from swarmsync.job_pages import DUE, LATER, CursorError, JobCursor, JobPage


def test_a_cursor_comes_back_as_it_was_given():
    now = datetime.now(UTC)
    for section in (DUE, LATER):
        cursor = JobCursor(section, now - timedelta(microseconds=7), uuid.uuid4(), now)
        text = cursor.encode()
        assert JobCursor.decode(text) == cursor
        assert all(c.isalnum() or c in "-_" for c in text), "URL-safe, no padding"


@pytest.mark.parametrize("text", [
    "", "not-base64!", base64.urlsafe_b64encode(b"[1, 2]").decode(),
    base64.urlsafe_b64encode(json.dumps({"s": "due", "t": "yesterday", "i": "x", "n": "now"}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"s": "sideways", "t": "2026-01-01T00:00:00+00:00",
                                         "i": str(uuid.uuid4()), "n": "2026-01-01T00:00:00+00:00"}).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps({"s": "due", "t": "2026-01-01T00:00:00", "i": str(uuid.uuid4()),
                                         "n": "2026-01-01T00:00:00"}).encode()).decode(),  # no time zone
])
def test_anything_else_is_refused_by_one_message(text):
    with pytest.raises(CursorError) as refused:
        JobCursor.decode(text)
    assert str(refused.value) == "not a job listing cursor (use X-Next-Cursor of the previous page)"


def test_a_page_is_a_list_of_rows_with_the_next_cursor():
    page = JobPage(["a", "b"], "next")
    assert page == ["a", "b"] and page.next_cursor == "next"
    assert JobPage().next_cursor is None and JobPage() == []
