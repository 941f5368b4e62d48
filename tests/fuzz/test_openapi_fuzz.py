"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis).

Every operation of the served document gets generated requests, valid and invalid; schemathesis's
checks are that nothing answers 5xx, every status and content type is one the document declares,
every answer matches its declared schema, invalid requests are refused with a 4xx, calls without a
key are refused, and undeclared methods get a 405 with `Allow` (bad input is always a clear 4xx JSON
error). Not checked: that every schema-valid request is accepted (`positive_data_acceptance`): many
refusals depend on state or on several fields together (a name already taken, from after to, a
quota), which a schema cannot say.

It runs against its own platform (its random organizations, quotas and suspensions would disturb the
shared one), as an organization with a small quota, so the sandboxes it manages to create stay few;
they carry the stack's test-run label and are removed with it.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from corral_stack.stack import Stack
from corral_testing.reporting import report_line
from corral_testing.stack import running_stack

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "25"))
"""Generated requests per operation (and generation mode)."""


def _call(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(f"{stack.api_url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {stack.admin_api_key}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


ANSWERS: Counter[int] = Counter()
"""Statuses of every generated request, printed at the end (what the fuzz actually reached)."""


def _disposable_key(stack: Stack, key: str) -> str:
    """A key without permissions (it can revoke itself, never the fuzz's own key)."""
    request = urllib.request.Request(f"{stack.api_url}/api-keys", method="POST",
                                     data=json.dumps({"name": f"disposable-{os.urandom(6).hex()}"}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["value"])


@pytest.fixture(scope="module")
def fuzz_target(request: pytest.FixtureRequest) -> Iterator[tuple[Stack, str]]:
    with running_stack() as stack:
        org = _call(stack, "POST", "/organizations", {"name": "fuzz"})
        _call(stack, "PATCH", f"/organizations/{org['id']}/quota",
              {"totalCpuQuota": 2, "totalMemoryQuota": 2, "totalDiskQuota": 6})
        yield stack, org["apiKey"]["value"]
    report_line(request.config, f"fuzz: {sum(ANSWERS.values())} generated requests, "
                                f"statuses {dict(sorted(ANSWERS.items()))}")


DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "proto-schemas" / "openapi.json").read_text())
"""The committed document: the one the api serves (checked below), loaded at collection time so that
every operation is its own test."""
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)
"""Unknown query parameters are ignored on purpose (clients send ones we may not know), and the key is
the test's own (the `ignored_auth` check still calls every operation without it)."""


def test_the_fuzzed_document_is_the_served_one(fuzz_target: tuple[Stack, str]) -> None:
    stack, _ = fuzz_target
    with urllib.request.urlopen(f"{stack.api_url}/openapi.json", timeout=30) as response:
        assert json.loads(response.read()) == DOCUMENT


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_the_api_answers_every_generated_request_as_documented(case: Any, fuzz_target: tuple[Stack, str]) -> None:
    stack, key = fuzz_target
    base = stack.api_url.removesuffix("/api")
    if case.method == "DELETE" and case.path.startswith("/api/api-keys/"):
        key = _disposable_key(stack, key)  # revoking the calling key must not end the fuzz
    response = case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                      excluded_checks=[positive_data_acceptance])
    ANSWERS[response.status_code] += 1
