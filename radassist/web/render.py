"""Page rendering with what every page shows: the user, their role, and the CSRF token for forms."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from radassist.auth.csrf import csrf_token
from radassist.auth.users import CurrentUser


def render(request: Request, name: str, context: dict[str, Any], user: CurrentUser | None,
           status_code: int = 200) -> HTMLResponse:
    templates = cast(Jinja2Templates, request.app.state.templates)
    secret = cast(bytes, request.app.state.secret_key)
    csrf = csrf_token(secret, user.session_token) if user is not None and user.session_token else ""
    response = templates.TemplateResponse(
        request, name, {**context, "user": user, "csrf": csrf, "is_admin": bool(user and user.is_admin),
         "can_review": bool(user and user.can_review)},
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
