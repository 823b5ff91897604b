"""Logging in and out.  The login form is protected by a double-submit token (a cookie and a form
field that must match), since there is no session yet to bind a CSRF token to."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from radassist.auth.csrf import FIELD, csrf_valid
from radassist.auth.ratelimit import LoginLimiter
from radassist.auth.users import authenticate, end_session, start_session
from radassist.db.tables import User
from radassist.web.deps import SESSION_COOKIE, SessionDep, SettingsDep, UserDep, identify
from radassist.web.render import render

logger = logging.getLogger(__name__)

router = APIRouter(tags=["auth"])

LOGIN_CSRF_COOKIE = "radassist_login"


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme), so the login is no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    """Cookies are ``Secure`` when configured so, and always on a request that came over HTTPS
    (directly, or through a proxy on this host sending ``X-Forwarded-Proto: https``, which uvicorn
    honours): the browser must not send them back over plain HTTP."""
    return bool(request.app.state.settings.web.secure_cookies) or request.url.scheme == "https"


def _no_user_yet(request: Request) -> bool:
    """True while the installation has no web user at all: the login page then says how to make one."""
    try:
        with request.app.state.sessionmaker() as session:
            return session.scalar(select(User.id).limit(1)) is None
    except SQLAlchemyError:
        return False  # the database does not answer: say nothing rather than something wrong


def _login_page(request: Request, next_url: str, error: str | None, status_code: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    context = {"next": next_url, "error": error, "login_csrf": token, "no_user_yet": _no_user_yet(request)}
    response = render(request, "login.html", context, None, status_code=status_code)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), max_age=3600, path="/login")
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:
    if identify(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, _safe_next(next), None)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    login_csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_url = _safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, login_csrf):
        return _login_page(request, next_url, "The form expired; please try again.", status_code=403)
    limiter = cast(LoginLimiter, request.app.state.login_limiter)
    client = request.client.host if request.client else "unknown"
    if limiter.blocked(username, client):
        logger.warning("login refused: too many failures from one client")
        return _login_page(request, next_url, "Too many failed attempts; wait a few minutes.", status_code=429)
    user = authenticate(session, username, password)
    if user is None:
        limiter.failed(username, client)
        logger.info("login failed")
        return _login_page(request, next_url, "Wrong user name or password.", status_code=401)
    limiter.succeeded(username, client)
    token = start_session(session, user.id, settings.web.session_hours)
    session.commit()
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=int(settings.web.session_hours * 3600), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", include_in_schema=False)
async def logout(request: Request, user: UserDep) -> Response:
    """Ends this browser's session (the form carries the CSRF token, so no other site can log one out)."""
    if user.via == "session" and user.session_token:
        form = await request.form()
        presented = form.get(FIELD)
        if not isinstance(presented, str) or not csrf_valid(request.app.state.secret_key, user.session_token, presented):
            return Response("missing or invalid CSRF token", status_code=403)
        with request.app.state.sessionmaker.begin() as session:
            end_session(session, user.session_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/me", tags=["auth"])
def me(user: UserDep) -> dict[str, str]:
    """Who the request is authenticated as, and how."""
    return {"name": user.name, "role": user.role.value, "via": user.via}


