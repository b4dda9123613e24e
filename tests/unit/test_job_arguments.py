"""An invalid submission is reported one `field: what is wrong` per field, the same whether pydantic found it on
this machine or the API refused it (a 422): `swarmsync submit` through the API sends the fields unvalidated and
the server's JobSpec judges them (docs/benchmarks.md, CLI start)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from swarmsync.cli.job_arguments import invalid_reason, submit_errors
from swarmsync.client import APIInputError
from swarmsync.spec import JobSpec


def test_pydantic_and_the_api_name_the_same_fields_the_same_way() -> None:
    with pytest.raises(ValidationError) as here:
        JobSpec(image="busybox", cpu=-1, pull_policy="sometimes")
    api = APIInputError(422, "422: ...", detail=[], errors=[
        {"loc": ["body", "spec", "cpu"], "msg": "Input should be greater than 0"},
        {"loc": ["body", "spec", "pull_policy"], "msg": "Input should be 'always', 'if-not-present' or 'never'"}])
    expected = ("cpu: Input should be greater than 0; "
                "pull_policy: Input should be 'always', 'if-not-present' or 'never'")
    assert invalid_reason(here.value) == expected
    assert invalid_reason(api) == expected
    assert isinstance(api, submit_errors()) and isinstance(here.value, submit_errors())


def test_a_refusal_outside_the_spec_names_its_own_field_and_one_naming_none_says_what_it_says() -> None:
    queue = APIInputError(422, "422: queue: bad", errors=[{"loc": ["body", "queue"], "msg": "bad label"}])
    assert invalid_reason(queue) == "queue: bad label"
    assert invalid_reason(APIInputError(400, "400: the template has no image")) == "400: the template has no image"
    assert invalid_reason(ValueError("memory 'lots' is not understood")) == "memory 'lots' is not understood"
