"""The DICOM node's own records: associations, and its current condition."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, utcnow


class Association(Base):
    """One DICOM association (accepted or refused): who called, from where, what came of it.

    AE titles and addresses are not patient data; nothing else about the peer is kept.
    """

    __tablename__ = "associations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    calling_ae_title: Mapped[str] = mapped_column(String(16))
    called_ae_title: Mapped[str] = mapped_column(String(16))
    peer_host: Mapped[str] = mapped_column(String(64))
    peer_port: Mapped[int | None]
    tls: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(32))
    """``open``, ``released``, ``aborted``, ``closed`` or ``rejected``."""
    reason: Mapped[str | None] = mapped_column(String(64))
    """Why it was refused or ended badly (a stable code such as ``caller.unknown``)."""
    instances_stored: Mapped[int] = mapped_column(Integer, default=0)
    instances_failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes_stored: Mapped[int] = mapped_column(BigInteger, default=0)

    def __repr__(self) -> str:
        return f"<Association {self.id} {self.outcome}>"


class NodeStatus(Base):
    """The listener's current condition (one row per listener name), for the worklist and ops pages."""

    __tablename__ = "node_status"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    accepting: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    """Why it is not accepting (e.g. ``storage.low_disk``)."""
    free_bytes: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<NodeStatus {self.name} accepting={self.accepting}>"
