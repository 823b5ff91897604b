"""What came in: studies, their series and instances (no patient identity is stored)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radassist.db.base import Base, enum_column, utcnow
from radassist.states import StudyState


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    accession_number_hash: Mapped[str | None] = mapped_column(String(16))
    """A short hash of the accession number: a handle for logs and search, not the number itself."""
    modality: Mapped[str | None] = mapped_column(String(16))
    study_description: Mapped[str | None] = mapped_column(String(64))
    calling_ae_title: Mapped[str | None] = mapped_column(String(16))
    called_ae_title: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[StudyState] = mapped_column(enum_column(StudyState), default=StudyState.RECEIVING)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]
    patient_age: Mapped[str | None] = mapped_column(String(4))
    """PatientAge as sent (e.g. ``064Y``), for the worklist; filled at intake when known."""
    patient_sex: Mapped[str | None] = mapped_column(String(1))
    """PatientSex as sent (``F``, ``M``, ``O``), for the worklist; filled at intake when known."""
    patient_key: Mapped[str | None] = mapped_column(String(32))
    """Keyed hash of who the study's first instance named as the patient (never the values):
    :mod:`radassist.intake.patient`. An instance naming someone else holds the study."""
    files_removed_at: Mapped[dt.datetime | None]
    """When retention removed the study's instances and outputs (its rows and timeline stay)."""

    series: Mapped[list[Series]] = relationship(back_populates="study", passive_deletes=True)
    jobs: Mapped[list[Job]] = relationship(back_populates="study", order_by="Job.created_at")

    __table_args__ = (
        Index("ix_studies_state_last_received_at", "state", "last_received_at"),
        # The worklist's order (newest first) and its filters (ops migration 0006).
        Index("ix_studies_last_received_at_id", "last_received_at", "id"),
        Index("ix_studies_accession_number_hash", "accession_number_hash"),
        # Retention's candidates: studies whose files are still on disk.
        Index("ix_studies_files_removed_at_state", "files_removed_at", "state"),
    )

    def __repr__(self) -> str:
        return f"<Study {self.id} {self.state}>"


class Series(Base):
    __tablename__ = "series"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None]
    series_description: Mapped[str | None] = mapped_column(String(64))
    instance_count: Mapped[int] = mapped_column(Integer, default=0)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(back_populates="series", passive_deletes=True)

    def __repr__(self) -> str:
        return f"<Series {self.id}>"


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    series_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None]
    path: Mapped[str] = mapped_column(String(512))
    """Relative to ``[storage] path``/instances."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    patient_key: Mapped[str | None] = mapped_column(String(32))
    """Keyed hash of who this instance names as the patient (:mod:`radassist.intake.patient`)."""
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")

    def __repr__(self) -> str:
        return f"<Instance {self.id}>"




class UnsyncedInstance(Base):
    """An instance committed before the flush that makes its file durable (:mod:`radassist.intake.unsynced`).

    Listed in the transaction that records the instance, unlisted by its writer's next transaction
    once the flush returned; what is listed at start-up is read back and kept only when whole.

    The key leads with the writer and its batch, and on SQLite the table is that key's B-tree
    alone (``WITHOUT ROWID``): the listener's transaction lists its instances and unlists the
    previous batch's on one page, where a rowid table with an index on the instance and one on
    the batch wrote three per instance (0015).  Lookups by instance (the start-up check's undo,
    the cascade from ``instances``) read a table that holds the last batch of each listener."""

    __tablename__ = "unsynced_instances"

    writer: Mapped[str] = mapped_column(String(32), primary_key=True)
    """The listener process's group commit that wrote it (a new token after a failed flush)."""
    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """The writer's transaction number: batches before the current one have been flushed."""
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(512))
    """The file the listing is about (a later revision of the instance has another path)."""
    crc32: Mapped[int] = mapped_column(BigInteger)
    """CRC-32 of the bytes written, to tell a whole file from one a crash left partial."""
    data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The instance's bytes when they were made durable in this commit instead of the file
    (``[storage] in_commit_max_bytes``): a file lost before its background flush is rewritten from
    them.  None: the Success waited for the file's flush."""

    __table_args__ = ({"sqlite_with_rowid": False},)

    def __repr__(self) -> str:
        return f"<UnsyncedInstance {self.instance_id}>"


if TYPE_CHECKING:
    from radassist.db.tables.jobs import Job
