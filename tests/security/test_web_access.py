"""The web app, route by route: every route is taken from ``app.routes`` (so a route added tomorrow is
checked tomorrow), requested without credentials, as a viewer, and with a cookie session lacking its
CSRF token.  Also the cookie flags, how credentials are stored, and the login limit.

tests/web/test_access.py checks hand-written lists of the same things; these tests enumerate the app
instead, and fill path parameters with rows that exist (so a missing guard would show data or act).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount, WebSocketRoute

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.migrate import upgrade
from radassist.read.system import audit_entries, intake_pauses
from radassist.web.app import create_app
from tests.web.support import PASSWORD, add_user, bearer, csrf_of, login
from tests.web.test_actions import World, _seed

WEB = Path(__file__).resolve().parents[2] / "radassist" / "web"

#: Reachable without a login, on purpose: the login form and the liveness/readiness probes (they
#: answer "ok"/"ready" and nothing else).  /metrics is *not* here: it needs a token unless
#: ``[web] metrics_public`` is on, which test_public_metrics_carry_no_identifiers allows.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/readyz")}
#: State-changing routes any logged-in user may use (ending one's own session).
ANY_ROLE = {("POST", "/logout")}
BODIES: dict[str, dict[str, str]] = {
    # Routes whose form fields are required: a well-formed body, so the role and the target's state decide.
    "/api/studies/{study_id}/resolve-identity": {"keep_instance_id": "00000000-0000-4000-8000-000000000000",
                                                 "resolution": "drop_others"},
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, through included routers; mounts and web
    sockets appear as MOUNT and WEBSOCKET, so a test sees them and has to decide about them."""
    found: list[tuple[str, str]] = []

    def add(route: object, path: str) -> None:
        if isinstance(route, Mount):
            found.append(("MOUNT", path))
        elif isinstance(route, WebSocketRoute):
            found.append(("WEBSOCKET", path))
        else:
            found.extend((m, path) for m in sorted(getattr(route, "methods", None) or ()) if m != "HEAD")

    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI 0.16x includes routers lazily
            for context in route.effective_route_contexts():
                add(context.original_route, context.path)
        else:
            add(route, getattr(route, "path", ""))
    return found


def fill(path: str, world: World) -> str:
    """``path`` with each parameter replaced by a row that exists in the seeded database."""
    values = {
        "study_id": str(world.failed_delivery_study),
        "job_id": str(world.failed_delivery_job),
        "delivery_id": str(world.sr_delivery),
        "sop_instance_uid": world.sop_uid,
        "ae_title": "MOD1",
        "frame": "1",
    }
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    unknown = set(names) - values.keys()
    assert not unknown, f"{path}: give this test a plausible value for {sorted(unknown)}"
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], path)


#: What the seeded database holds that no refused request may show.
def _seeded_strings(world: World) -> list[str]:
    return ["CHEST 1", "1.2.826.0.1.3680043.8.498.71", world.sop_uid, "pacs.unreachable", "connection refused"]


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    return sqlite_settings


@pytest.fixture
def world(settings: Settings, testdata: Path) -> World:
    return _seed(settings, testdata)


@pytest.fixture
def app(world: World) -> FastAPI:
    return create_app(world.settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _state_changing(app: FastAPI) -> list[tuple[str, str]]:
    routes = [(m, p) for m, p in app_routes(app) if m not in SAFE_METHODS and (m, p) not in PUBLIC]
    return sorted(routes, key=lambda r: r in ANY_ROLE)  # /logout last: it ends the session


def _audit_rows(settings: Settings) -> int:
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as session:
            return len(audit_entries(session, 1000, 0)) + len(intake_pauses(session))
    finally:
        sessions.kw["bind"].dispose()


def test_route_enumeration_sees_every_declared_route(app: FastAPI) -> None:
    """The enumeration the other tests rely on finds each ``@router.<method>("...")`` in the source."""
    declared = set()
    for source in [*sorted((WEB / "routes").glob("*.py")), WEB / "app.py"]:
        for method, path in re.findall(r'@(?:router|app)\.(get|post|put|patch|delete)\(\s*"([^"]*)"', source.read_text()):
            declared.add((method.upper(), path))
    served = app_routes(app)
    assert len(declared) >= 25
    missing = [d for d in declared if not any(m == d[0] and p.endswith(d[1]) for m, p in served)]
    assert missing == []
    unexpected = [r for r in served if r[0] in ("MOUNT", "WEBSOCKET")]
    assert unexpected == [], "a mount or web socket: decide whether it needs a login and add it to these tests"


def test_no_route_answers_without_a_login(app: FastAPI, client: TestClient, world: World) -> None:
    routes = app_routes(app)
    problems: list[str] = []
    checked = 0
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "unknown token": bearer("ra_" + "x" * 43),
        "forged cookie": {"Cookie": "radassist_session=" + "A" * 43},
        "basic auth": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        for url in {fill(path, world), path.replace("{", "").replace("}", "")}:  # real rows, then junk values
            for label, headers in credentials.items():
                checked += 1
                response = client.request(method, url, headers=headers, follow_redirects=False)
                location = response.headers.get("location", "")
                refused = response.status_code in (401, 403) or (
                    response.status_code == 303 and location.startswith("/login?next=")
                )
                if not refused:
                    problems.append(f"{method} {url} ({label}): {response.status_code}")
                leaked = [s for s in _seeded_strings(world) if s in response.text]
                if leaked:
                    problems.append(f"{method} {url} ({label}) shows {leaked}")
                if url.startswith("/api/") and response.status_code not in (401, 403):
                    problems.append(f"{method} {url} ({label}): an API answers 401, not a redirect")
    assert problems == []
    assert len([r for r in routes if r not in PUBLIC]) >= 20 and checked >= 4 * 20
    # The public ones answer, and with nothing from the database.
    for method, path in sorted(PUBLIC):
        if method == "GET":
            response = client.get(path)
            assert response.status_code == 200, path
            assert not [s for s in _seeded_strings(world) if s in response.text], path
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert _audit_rows(world.settings) == 0


def test_public_metrics_carry_no_identifiers(make_settings: Callable[..., Settings], tmp_path: Path,
                                             testdata: Path) -> None:
    """Prometheus usually scrapes without a login; ``metrics_public`` allows that, so /metrics must hold
    counts by state and error code only: no UID, AE title, accession (or its hash), host or description."""
    from radassist.identifiers import accession_hash
    from tests.web.test_actions import ACCESSION

    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'm.sqlite3'}", web_metrics_public="true")
    upgrade(settings)
    world = _seed(settings, testdata)
    with TestClient(create_app(settings)) as client:
        body = client.get("/metrics").text
    assert "radassist_studies" in body and "radassist_failures" in body  # the seeded rows were counted
    for value in [*_seeded_strings(world)[:3], "MOD1", "CTSCANNER", "RADASSIST", ACCESSION,
                  accession_hash(ACCESSION), "064Y", str(world.failed_delivery_study)]:
        assert value not in body, value


def test_a_viewer_can_change_nothing(app: FastAPI, world: World) -> None:
    routes = [r for r in _state_changing(app) if r not in ANY_ROLE]
    assert len(routes) >= 7
    viewer_token = add_user(world.settings, "viewer1", "viewer")
    admin_token = add_user(world.settings, "admin1", "admin")
    with TestClient(app) as client:
        for method, path in routes:
            response = client.request(method, fill(path, world), headers=bearer(viewer_token))
            assert response.status_code == 403, (method, path, response.status_code)
        # A viewer's browser session, with a valid CSRF token of its own: still the role decides.
        assert login(client, "viewer1") == 303
        token = csrf_of(client.get("/system").text)
        for method, path in routes:
            response = client.request(method, fill(path, world), data={"csrf_token": token, **BODIES.get(path, {})},
                                      follow_redirects=False)
            assert response.status_code == 403, (method, path, response.status_code)
    assert _audit_rows(world.settings) == 0
    # The same requests from an admin go through (or meet the target's state): the 403s were the role's.
    with TestClient(app, headers=bearer(admin_token)) as admin:
        for method, path in routes:
            response = admin.request(method, fill(path, world), data=BODIES.get(path))
            assert response.status_code in (200, 409), (method, path, response.status_code)
    assert _audit_rows(world.settings) >= len(routes)


def test_every_state_changing_route_needs_the_csrf_token_with_a_cookie(app: FastAPI, world: World) -> None:
    routes = _state_changing(app)
    add_user(world.settings, "admin1", "admin")
    add_user(world.settings, "admin2", "admin")
    with TestClient(app) as other:
        assert login(other, "admin2") == 303
        foreign = csrf_of(other.get("/system").text)  # valid, but for another session
    with TestClient(app) as client:
        assert login(client, "admin1") == 303
        own = csrf_of(client.get("/system").text)
        attempts: list[dict[str, object]] = [
            {},
            {"data": {"csrf_token": ""}},
            {"data": {"csrf_token": "0" * 64}},
            {"data": {"csrf_token": foreign}},
            {"data": {"csrf_token": own.upper()}},
            {"headers": {"X-CSRF-Token": foreign}},
            {"json": {"csrf_token": foreign}},
        ]
        for method, path in routes:
            for attempt in attempts:
                response = client.request(method, fill(path, world), follow_redirects=False, **attempt)  # type: ignore[arg-type]
                assert response.status_code == 403, (method, path, attempt, response.status_code)
        assert client.get("/api/me").json()["name"] == "admin1"  # not even logged out
        assert _audit_rows(world.settings) == 0
        # With its own token each route works (actions may still meet a state they do not apply to).
        for method, path in routes:
            response = client.request(method, fill(path, world), data={"csrf_token": own, **BODIES.get(path, {})},
                                      follow_redirects=False)
            assert response.status_code == 303, (method, path, response.status_code)
        assert client.get("/api/me").status_code == 401  # /logout came last
    # The login form has its own double-submit token: a post without the cookie's twin logs nobody in.
    with TestClient(app) as client:
        response = client.post("/login", data={"username": "admin1", "password": PASSWORD, "login_csrf": "forged"},
                               follow_redirects=False)
        assert response.status_code == 403 and "radassist_session" not in response.headers.get("set-cookie", "")


def _cookie_flags(response: object, name: str) -> set[str]:
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        if header.startswith(name + "="):
            return {part.strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set")


@pytest.mark.parametrize(
    ("base_url", "secure_setting", "secure"),
    [("http://testserver", "false", False), ("http://testserver", "true", True), ("https://testserver", "false", True)],
    ids=["http", "http-configured-secure", "https"],
)
def test_cookie_flags(make_settings: Callable[..., Settings], tmp_path: Path, base_url: str, secure_setting: str,
                      secure: bool) -> None:
    """HttpOnly and SameSite always; Secure when configured *or* when the request came over HTTPS."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}", web_secure_cookies=secure_setting)
    upgrade(settings)
    add_user(settings, "admin1", "admin")
    with TestClient(create_app(settings), base_url=base_url) as client:
        page = client.get("/login")
        login_flags = _cookie_flags(page, "radassist_login")
        assert {"httponly", "samesite=strict"} <= login_flags
        assert ("secure" in login_flags) is secure
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        # Sent by hand: the test client would not return a Secure cookie over plain HTTP.
        done = client.post("/login", data={"username": "admin1", "password": PASSWORD, "login_csrf": token},
                           headers={"Cookie": f"radassist_login={token}"}, follow_redirects=False)
        assert done.status_code == 303
        flags = _cookie_flags(done, "radassist_session")
        assert {"httponly", "samesite=lax", "path=/"} <= flags
        assert ("secure" in flags) is secure
        assert not any(f.startswith("domain=") for f in flags)  # host-only


def test_passwords_tokens_and_sessions_are_stored_hashed(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = "Plaintext-Sentinel-Pass-42"
    api_token = add_user(settings, "admin1", "admin", password)
    with TestClient(create_app(settings)) as client:
        assert login(client, "admin1", "Wrong-Sentinel-Pass-43") == 401
        assert login(client, "admin1", password) == 303
        cookie = client.cookies.get("radassist_session")
        assert cookie and client.get("/api/me", headers=bearer(api_token)).status_code == 200
    secrets = [password, "Wrong-Sentinel-Pass-43", api_token, cookie]

    engine = sa.create_engine(settings.database_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            dump = "\n".join(repr(conn.execute(sa.select(t)).all()) for t in metadata.sorted_tables)
            (hashed,) = conn.execute(sa.text("SELECT password_hash FROM users WHERE name = 'admin1'")).scalars()
    finally:
        engine.dispose()
    assert "admin1" in dump  # the dump holds the users table
    assert [s for s in secrets if s in dump] == []
    assert hashed.startswith("$argon2id$") and PasswordHasher().verify(hashed, password)
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    database_files = database.parent.glob(f"{database.name}*")
    raw = b"".join(p.read_bytes() for p in database_files)
    assert raw and [s for s in secrets if s.encode() in raw] == []
    assert [s for s in secrets if s in caplog.text] == []


def test_login_limit_counts_a_name_in_any_case(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """After the allowed failures, the same name in other letter cases is refused too, and even the
    right password gets no session (tests/web checks the limit itself and another name apart)."""
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", web_login_attempts="3")
    upgrade(settings)
    add_user(settings, "admin1", "admin")
    with TestClient(create_app(settings)) as client:
        for name in ("admin1", "ADMIN1", "Admin1"):
            assert login(client, name, "wrong password") == 401
        for name in ("admin1", "ADMIN1", "aDmIn1"):
            assert login(client, name) == 429
        assert client.cookies.get("radassist_session") is None
        assert client.get("/api/me").status_code == 401


def test_identifiers_in_refused_requests_are_not_echoed(client: TestClient, world: World) -> None:
    """An error page never repeats what the request carried (a searched accession number, a UID)."""
    admin = add_user(world.settings, "admin1", "admin")
    probe = "ACCSENTINEL77"
    for url in [f"/api/studies?accession={probe * 6}", f"/api/studies/{probe}", f"/studies/{uuid.uuid4()}",
                f"/studies/{world.failed_delivery_study}/instances/{probe}/thumbnail.png"]:
        response = client.get(url, headers=bearer(admin))
        assert response.status_code in (404, 422), url
        assert probe not in response.text, (url, response.text[:300])
