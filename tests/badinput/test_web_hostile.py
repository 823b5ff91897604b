"""The web app against generated and hand-picked bad input: never a server error.

* schemathesis (Python API) walks every operation of the app's own OpenAPI schema with an admin's
  API token, valid (positive) and schema-violating (negative) inputs, a bounded number of examples
  per operation and mode (``RADASSIST_SCHEMATHESIS_EXAMPLES``, default 25): 0 responses >= 500.
* Explicit cases: out-of-schema query values, ids and form posts get a 4xx, pages included.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from radassist.config import Settings
from radassist.web.app import create_app
from tests.web.support import add_user, bearer, csrf_of, login

EXAMPLES = int(os.environ.get("RADASSIST_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture
def admin_app(migrated_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    token = add_user(migrated_settings, "fuzzadmin", "admin")
    with TestClient(create_app(migrated_settings), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_schemathesis_finds_no_server_error(admin_app: tuple[TestClient, dict[str, str]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    client, headers = admin_app
    app = client.app
    schema = schemathesis.openapi.from_dict(app.openapi())  # type: ignore[attr-defined]
    schema.app = app
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    calls = 0
    errors: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            calls += _explore(operation, mode, headers, errors)
    with capsys.disabled():
        print(f"\nbadinput web: schemathesis {len(operations)} operations, {calls} requests, "
              f"{len([e for e in errors if '-> 5' in e])} server errors, {time.monotonic() - started:.1f}s")
    assert errors == [], "\n".join(errors[:20])


def _explore(operation: Any, mode: GenerationMode, headers: dict[str, str], errors: list[str]) -> int:
    """Up to EXAMPLES generated requests to one operation; server errors go to ``errors``."""
    seen: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        seen.append(response.status_code)
        if response.status_code >= 500:
            errors.append(f"{operation.label} [{mode.value}] -> {response.status_code}: {case.as_curl_command()}")

    try:
        run()
    except Unsatisfiable:
        pass  # nothing in this operation can be made invalid (no parameters, or free strings)
    except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a server error too
        errors.append(f"{operation.label} [{mode.value}] -> 5xx: {type(exc).__name__}: {exc}"[:300])
    return len(seen)


ID = str(uuid.uuid4())
BAD_GETS = [
    "/api/studies?state=bogus",
    "/api/studies?offset=-1",
    "/api/studies?limit=0",
    "/api/studies?limit=1000000",
    "/api/studies?limit=99999999999999999999999",
    "/api/studies?limit=abc",
    "/api/studies?from=2024-13-45",
    "/api/studies?to=yesterday",
    "/api/studies?modality=" + "X" * 17,
    "/api/studies?ae=" + "A" * 17,
    "/api/studies?accession=" + "9" * 65,
    "/api/studies/not-a-uuid",
    "/api/studies/../../etc/passwd",
    "/api/studies/" + ID + "%00",
    "/api/audit?limit=-5",
    "/api/audit?offset=-1",
    # Past PostgreSQL's bigint OFFSET: was a 500 (DataError) on PostgreSQL.
    "/api/audit?offset=9223372036854775808",
    "/api/studies?offset=9223372036854775808",
    "/?offset=9223372036854775808",
    "/audit?offset=9223372036854775808",
    "/api/audit?limit=100000",
    "/?state=bogus",
    "/?offset=-1",
    "/?limit=100000",
    "/studies/not-a-uuid",
    "/studies/" + "1" * 5000,
    "/studies/not-a-uuid/instances/1.2.3/thumbnail.png",
    f"/studies/{ID}/instances/{'9' * 10000}/thumbnail.png",
    "/audit?offset=-1",
    "/api/quality?from=2024-13-45",
    "/api/quality?to=9999-12-31",  # the day after overflows
    "/api/quality?days=0",
    "/api/quality?sex=X",
    "/api/quality?drafts=bogus",
    "/api/quality?model=%00",
    "/quality?age_band=" + "9" * 9,
    "/quality.csv?from=yesterday",
]
BAD_POSTS = [
    "/api/jobs/not-a-uuid/retry",
    "/api/jobs/1;DROP TABLE jobs/cancel",
    "/api/deliveries/%27%20OR%201=1/retry",
    "/api/studies/<script>/force-complete",
    "/api/studies/" + "f" * 300 + "/redraft",
]


def test_out_of_schema_input_gets_4xx(admin_app: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = admin_app
    for path in BAD_GETS:
        status = client.get(path, headers=headers, follow_redirects=False).status_code
        assert 400 <= status < 500, (path[:80], status)
    for path in BAD_POSTS:
        status = client.post(path, headers=headers).status_code
        assert 400 <= status < 500, (path[:80], status)
    # AE titles: too long, empty after trimming, or with characters an AE title cannot hold.
    for title in ["A" * 17, "%20%20", "A" * 5000]:
        response = client.post(f"/api/intake/{title}/pause", headers=headers)
        assert 400 <= response.status_code < 500, (title[:20], response.status_code)


def test_browser_forms_reject_bad_input(migrated_settings: Settings) -> None:
    add_user(migrated_settings, "formadmin", "admin")
    with TestClient(create_app(migrated_settings), raise_server_exceptions=False) as client:
        # The login form: over-long fields, missing fields, a wrong login token.
        page = client.get("/login")
        assert page.status_code == 200
        for data in [{"username": "x" * 65, "password": "p"}, {"username": "formadmin", "password": "p" * 1025},
                     {"password": "p"}, {}]:
            status = client.post("/login", data=data, follow_redirects=False).status_code
            assert 400 <= status < 500, (list(data), status)
        assert login(client, "formadmin") == 303
        token = csrf_of(client.get("/system").text)
        for path in ["/api/jobs/not-a-uuid/retry", f"/api/studies/{ID}/redraft"]:
            # A form post with a wrong CSRF token, and one with a bad id but a good token.
            assert client.post(path, data={"csrf_token": "forged"}).status_code in (403, 422)
        assert 400 <= client.post("/api/jobs/not-a-uuid/retry", data={"csrf_token": token}).status_code < 500
        # An unknown study with a good token: refused as a state conflict, never a 5xx.
        response = client.post(f"/api/studies/{ID}/redraft", data={"csrf_token": token, "next": "//evil.example"},
                               follow_redirects=False)
        assert response.status_code < 500
        if response.status_code == 303:
            assert response.headers["location"] == "/"  # no open redirect
