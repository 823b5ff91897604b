"""Who may see and do what: every endpoint refused to anonymous users, actions refused to viewers,
CSRF on every cookie-authenticated form, login limits, cookie flags, the secret key rules."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from radassist.auth.secret import SECRET_FILE
from radassist.config import Settings
from radassist.errors import ConfigError
from radassist.web.app import create_app
from tests.web.support import PASSWORD, add_user, bearer, csrf_of, login

ID = str(uuid.uuid4())
PAGES = ["/", f"/studies/{ID}", "/system", "/audit", f"/studies/{ID}/instances/1.2.3/thumbnail.png", "/review",
         "/quality", "/quality.csv"]
API_GETS = ["/api/studies", f"/api/studies/{ID}", "/api/system", "/api/audit", "/api/intake/pauses", "/api/me",
            "/api/openapi.json", "/api/docs", "/metrics", "/api/review", "/api/verdicts.csv", "/api/quality",
            "/api/quality/drift"]
ACTIONS = [f"/api/jobs/{ID}/retry", f"/api/jobs/{ID}/cancel", f"/api/deliveries/{ID}/retry",
           f"/api/studies/{ID}/force-complete", f"/api/studies/{ID}/redraft", "/api/intake/MOD1/pause",
           "/api/intake/MOD1/resume", f"/api/jobs/{ID}/release", f"/api/jobs/{ID}/discard", f"/api/jobs/{ID}/verdict",
           f"/api/deliveries/{ID}/send-anyway", f"/api/deliveries/{ID}/cancel"]


@pytest.fixture
def app_client(migrated_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(migrated_settings)) as c:
        yield c


def test_every_endpoint_but_the_probes_needs_a_login(app_client: TestClient) -> None:
    assert app_client.get("/healthz").status_code == 200
    assert app_client.get("/readyz").status_code == 200
    for path in PAGES:
        response = app_client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    for path in API_GETS:
        response = app_client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    for path in ACTIONS:
        assert app_client.post(path).status_code == 401, path
    assert app_client.get("/api/studies", headers=bearer("ra_not-a-token")).status_code == 401
    # A page with a wrong token is refused too, rather than redirected.
    assert app_client.get("/", headers=bearer("ra_not-a-token"), follow_redirects=False).status_code == 401


def test_metrics_can_be_made_public(make_settings: Callable[..., Settings], database_url: str) -> None:
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=database_url, web_metrics_public="true")
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/studies").status_code == 401


def test_viewer_reads_but_may_not_act(migrated_settings: Settings, app_client: TestClient) -> None:
    token = add_user(migrated_settings, "viewer1", "viewer")
    headers = bearer(token)
    assert app_client.get("/api/me", headers=headers).json() == {"name": "viewer1", "role": "viewer", "via": "token"}
    for path in ["/", "/system", "/api/studies", "/api/system", "/api/intake/pauses", "/metrics", "/api/openapi.json"]:
        assert app_client.get(path, headers=headers).status_code == 200, path
    for path in ["/audit", "/api/audit", "/api/verdicts.csv"]:
        assert app_client.get(path, headers=headers).status_code == 403, path
    for path in ACTIONS:
        assert app_client.post(path, headers=headers).status_code == 403, path
    # A viewer's page offers no action buttons.
    login(app_client, "viewer1")
    assert "csrf_token" in app_client.get("/system").text  # only the logout form
    assert "Pause" not in app_client.get("/system").text


def test_login_session_cookie_csrf_and_logout(migrated_settings: Settings, app_client: TestClient) -> None:
    add_user(migrated_settings, "admin1", "admin")
    assert login(app_client, "admin1") == 303
    cookie = next(h for h in app_client.cookies.jar if h.name == "radassist_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure
    assert app_client.get("/api/me").json() == {"name": "admin1", "role": "admin", "via": "session"}
    html = app_client.get("/system").text
    token = csrf_of(html)

    # A cookie-authenticated POST without (or with a wrong) CSRF token changes nothing.
    assert app_client.post("/api/intake/MOD1/pause", data={"next": "/system"}).status_code == 403
    assert app_client.post("/api/intake/MOD1/pause", data={"csrf_token": "0" * 64}).status_code == 403
    assert app_client.get("/api/intake/pauses").json() == []
    done = app_client.post("/api/intake/MOD1/pause", data={"csrf_token": token, "next": "https://evil.example/"},
                           follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"  # never an open redirect
    assert [p["ae_title"] for p in app_client.get("/api/intake/pauses").json()] == ["MOD1"]
    audit = app_client.get("/api/audit").json()
    assert audit[0]["user_name"] == "admin1" and audit[0]["action"] == "pause_intake" and audit[0]["outcome"] == "done"
    assert "MOD1" in app_client.get("/audit").text

    assert app_client.post("/logout", data={}).status_code == 403  # logout needs the token too
    out = app_client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert app_client.get("/api/me").status_code == 401


def test_login_refusals_and_rate_limit(make_settings: Callable[..., Settings], database_url: str) -> None:
    from radassist.db.migrate import upgrade

    settings = make_settings(database_url=database_url, web_login_attempts="3", web_secure_cookies="true")
    upgrade(settings)
    add_user(settings, "admin1", "admin")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        # The login form's own CSRF: a post without the matching cookie is refused.
        refused = client.post("/login", data={"username": "admin1", "password": PASSWORD, "login_csrf": "x"})
        assert refused.status_code == 403
        for _ in range(3):
            assert login(client, "admin1", "wrong password") == 401
        assert login(client, "admin1") == 429  # even the right password, until the window passes
        assert login(client, "nobody", "wrong password") == 401  # another name is counted apart
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        assert login(client, "admin1") == 303  # a fresh process (the limiter is per process)
        cookie = next(h for h in client.cookies.jar if h.name == "radassist_session")
        assert cookie.secure


def test_secret_key_placeholder_refused_and_generated_key_kept(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        create_app(make_settings(web_secret_key="change-me"))
    assert excinfo.value.code == "config.secret_placeholder"
    with pytest.raises(ConfigError):
        create_app(make_settings(web_secret_key="short"))
    settings = make_settings()
    first = create_app(settings).state.secret_key
    path = settings.storage.path / SECRET_FILE
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    assert create_app(settings).state.secret_key == first
    configured = "k" * 40
    assert create_app(make_settings(web_secret_key=configured)).state.secret_key == configured.encode()


def test_cli_adds_user_and_issues_token(migrated_settings: Settings, database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADASSIST_")}
    env.update({"RADASSIST_DATABASE_URL": database_url, "RADASSIST_STORAGE_PATH": str(migrated_settings.storage.path)})

    def radassist(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "radassist", *args], input=stdin, capture_output=True,
                              text=True, env=env, timeout=60, check=False)

    added = radassist("user", "add", "ops", "--role", "viewer", "--password-stdin", stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    short = radassist("user", "add", "ops2", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password" in short.stderr
    missing = radassist("user", "token", "nobody")
    assert missing.returncode == 2
    issued = radassist("user", "token", "ops")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("ra_")
    with TestClient(create_app(migrated_settings)) as client:
        assert client.get("/api/me", headers=bearer(token)).json()["role"] == "viewer"
        assert login(client, "ops", "a long passphrase") == 303
