"""Operations: users, browser sessions, API tokens, the audit log, intake pauses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, JSONVariant, utcnow


class User(Base):
    """A local user of the web app; the password is kept only as an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    """``admin`` (may act) or ``viewer`` (may look)."""
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class WebSession(Base):
    """A logged-in browser; the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]

    def __repr__(self) -> str:
        return f"<WebSession {self.id}>"


class ApiToken(Base):
    """A bearer token for the JSON API, acting as its user; kept only as its SHA-256."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]

    def __repr__(self) -> str:
        return f"<ApiToken {self.id}>"


class AuditEntry(Base):
    """One admin action: who, when, what, on which surrogate id (never patient data)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(64))
    """A job, delivery or study id, or an AE title."""
    outcome: Mapped[str] = mapped_column(String(16))
    """``done`` or ``refused`` (the target was not in a state the action applies to)."""
    detail: Mapped[dict[str, Any]] = mapped_column(JSONVariant, default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action}>"


class IntakePause(Base):
    """A calling AE title whose new associations the listener refuses until an admin resumes it."""

    __tablename__ = "intake_pauses"

    ae_title: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paused_by: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<IntakePause {self.ae_title}>"
