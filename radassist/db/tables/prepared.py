"""Prepared inputs kept in the database (``[prepared] backend = "database"``): one row per named blob.

A job's blobs are written in one transaction and removed with the job (``ON DELETE CASCADE``), so
they are there whole or not at all, and a GPU machine reads them over the database connection it
already has, with no shared disk.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, utcnow


class PreparedBlob(Base):
    """One named blob of a job's prepared inputs (a PNG picture or the manifest)."""

    __tablename__ = "prepared_blobs"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<PreparedBlob {self.job_id} {self.name}>"
