"""Typed dependencies the routes declare: a session per request, the settings, the templates, and
who is asking (a browser session or an API token) with the role they need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from radassist.auth.csrf import FIELD as CSRF_FIELD
from radassist.auth.csrf import csrf_valid
from radassist.auth.users import CurrentUser, user_for_session, user_for_token
from radassist.config import Settings
from radassist.web.system import SystemProbe

SESSION_COOKIE = "radassist_session"


class LoginRequired(Exception):
    """Raised for a page (not the API) when nobody is logged in; answered with a redirect to /login."""


def get_session(request: Request) -> Iterator[Session]:
    """A read session for one request, closed (and its transaction rolled back) afterwards."""
    sessions = cast(sessionmaker[Session], request.app.state.sessionmaker)
    with sessions() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_templates(request: Request) -> Jinja2Templates:
    return cast(Jinja2Templates, request.app.state.templates)


def get_probe(request: Request) -> SystemProbe:
    return cast(SystemProbe, request.app.state.probe)


def identify(request: Request) -> CurrentUser | None:
    """The user behind ``Authorization: Bearer`` or the session cookie, else None."""
    cached = getattr(request.state, "user", False)
    if cached is not False:
        return cast(CurrentUser | None, cached)
    sessions = cast(sessionmaker[Session], request.app.state.sessionmaker)
    user: CurrentUser | None = None
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    with sessions() as session:
        if scheme.lower() == "bearer" and credentials.strip():
            user = user_for_token(session, credentials.strip())
            if session.dirty or session.new or session.in_transaction():
                session.commit()  # last_used_at, when it changed (a no-op commit otherwise)
        elif (cookie := request.cookies.get(SESSION_COOKIE)) is not None:
            user = user_for_session(session, cookie)
    request.state.user = user
    return user


def require_user(request: Request) -> CurrentUser:
    user = identify(request)
    if user is None:
        if request.url.path.startswith("/api/") or request.headers.get("authorization"):
            raise HTTPException(status_code=401, detail="login required", headers={"WWW-Authenticate": "Bearer"})
        raise LoginRequired()
    return user


def require_admin(user: Annotated[CurrentUser, Depends(require_user)]) -> CurrentUser:
    if not user.is_admin:
        raise HTTPException(status_code=403, detail="this needs the admin role")
    return user


def require_reviewer(user: Annotated[CurrentUser, Depends(require_user)]) -> CurrentUser:
    if not user.can_review:
        raise HTTPException(status_code=403, detail="this needs the radiologist or admin role")
    return user


async def _check_csrf(request: Request, user: CurrentUser) -> None:
    """A form posted with the session cookie must carry the CSRF token (API tokens need none)."""
    if user.via == "session":
        form = await request.form()
        presented = form.get(CSRF_FIELD) or request.headers.get("x-csrf-token")
        secret = cast(bytes, request.app.state.secret_key)
        if not isinstance(presented, str) or not csrf_valid(secret, user.session_token or "", presented):
            raise HTTPException(status_code=403, detail="missing or invalid CSRF token")


async def require_admin_post(request: Request, user: Annotated[CurrentUser, Depends(require_admin)]) -> CurrentUser:
    """An admin's state-changing request."""
    await _check_csrf(request, user)
    return user


async def require_reviewer_post(
    request: Request, user: Annotated[CurrentUser, Depends(require_reviewer)]
) -> CurrentUser:
    """A radiologist's (or admin's) state-changing request: a verdict, a released draft, a question."""
    await _check_csrf(request, user)
    return user


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
ProbeDep = Annotated[SystemProbe, Depends(get_probe)]
UserDep = Annotated[CurrentUser, Depends(require_user)]
AdminDep = Annotated[CurrentUser, Depends(require_admin)]
AdminPostDep = Annotated[CurrentUser, Depends(require_admin_post)]
ReviewerDep = Annotated[CurrentUser, Depends(require_reviewer)]
ReviewerPostDep = Annotated[CurrentUser, Depends(require_reviewer_post)]
