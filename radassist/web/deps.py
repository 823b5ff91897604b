"""Typed dependencies the routes declare: a session per request, the settings, the templates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings


def get_session(request: Request) -> Iterator[Session]:
    """A read session for one request, closed (and its transaction rolled back) afterwards."""
    sessions = cast(sessionmaker[Session], request.app.state.sessionmaker)
    with sessions() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_templates(request: Request) -> Jinja2Templates:
    return cast(Jinja2Templates, request.app.state.templates)


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
