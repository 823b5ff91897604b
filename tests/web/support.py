"""Helpers for the web tests: users with a role, an API token, a browser-style login."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from radassist.auth.users import create_user, issue_api_token
from radassist.config import Settings
from radassist.db.engine import make_sessionmaker

PASSWORD = "correct horse battery"


def add_user(settings: Settings, name: str, role: str, password: str = PASSWORD) -> str:
    """Create (or reset) a user and return a fresh API token for it."""
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as session:
            create_user(session, name, password, role)
            return issue_api_token(session, name)
    finally:
        sessions.kw["bind"].dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, name: str, password: str = PASSWORD) -> int:
    """Log in through the form like a browser (login CSRF cookie + field); returns the status."""
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text
    response = client.post("/login", data={"username": name, "password": password, "login_csrf": token.group(1),
                                           "next": "/"}, follow_redirects=False)
    return response.status_code


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None and found.group(1), "no CSRF token on the page"
    return found.group(1)
