"""What a button that changes something shows: the API call's success, or its refusal."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from swarmsync.client import APIError

T = TypeVar("T")


def act(call: Callable[[], T], success: str | Callable[[T], str]) -> T | None:
    """Run `call` (an API call); show `success` (or the text it makes of the result) on success,
    the API's refusal as an error otherwise (the page keeps working). Returns the result, or None."""
    try:
        result = call()
    except APIError as exc:
        st.error(str(exc))
        return None
    st.success(success(result) if callable(success) else success)
    return result
