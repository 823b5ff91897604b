"""The tables: what came in (studies, series, instances), what we did (jobs, drafts, deliveries), and when (events).

Patient identity is deliberately not stored here: the SR and ORU builders read it from the received
files when they need it, so the database (and everything that lists it) holds no names or IDs.
``__repr__`` shows keys and state only, so a logged object can never leak anything else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radassist.db.base import Base, JSONVariant, utcnow
from radassist.states import DeliveryChannel, DeliveryState, JobState, StudyState


def _enum(cls: type[StrEnum]) -> Enum:
    """Store a StrEnum by value as a plain string (no native PostgreSQL enum to migrate)."""
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


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
    state: Mapped[StudyState] = mapped_column(_enum(StudyState), default=StudyState.RECEIVING)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    first_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]

    series: Mapped[list[Series]] = relationship(back_populates="study", passive_deletes=True)
    jobs: Mapped[list[Job]] = relationship(back_populates="study", order_by="Job.created_at")

    __table_args__ = (Index("ix_studies_state_last_received_at", "state", "last_received_at"),)

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
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")

    def __repr__(self) -> str:
        return f"<Instance {self.id}>"


class Job(Base):
    """One drafting of one study: from queued to every output delivered (or failed)."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.QUEUED, index=True)
    model_name: Mapped[str] = mapped_column(String(256))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    sr_sop_instance_uid: Mapped[str | None] = mapped_column(String(64))
    """Derived once from the job id, so a retried delivery re-sends the same object."""
    sr_path: Mapped[str | None] = mapped_column(String(512))
    """Relative to ``[storage] path``/outputs."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    drafted_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    study: Mapped[Study] = relationship(back_populates="jobs")
    draft: Mapped[Draft | None] = relationship(back_populates="job", uselist=False)
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="job", order_by="Delivery.created_at")

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.state}>"


class Draft(Base):
    """What the model wrote, and exactly how it was asked."""

    __tablename__ = "drafts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    findings: Mapped[str] = mapped_column(Text)
    impression: Mapped[str] = mapped_column(Text)
    raw_text: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(256))
    model_revision: Mapped[str | None] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_version: Mapped[str] = mapped_column(String(32))
    generation: Mapped[dict[str, Any]] = mapped_column(JSONVariant, default=dict)
    """Generation settings and figures (tokens, seconds, images shown)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="draft")

    def __repr__(self) -> str:
        return f"<Draft {self.id} job={self.job_id}>"


class Delivery(Base):
    """One output to one destination: its own state, attempts and next try (the outbox)."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    channel: Mapped[DeliveryChannel] = mapped_column(_enum(DeliveryChannel))
    destination: Mapped[str] = mapped_column(String(64))
    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    control_id: Mapped[str | None] = mapped_column(String(64))
    """HL7 MSH-10, fixed at creation and reused on every retry."""
    payload_path: Mapped[str | None] = mapped_column(String(512))
    """Relative to ``[storage] path``/outputs: the exact bytes sent on every attempt."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]

    job: Mapped[Job] = relationship(back_populates="deliveries")

    __table_args__ = (
        UniqueConstraint("job_id", "channel", "destination", name="uq_deliveries_job_channel_destination"),
        Index("ix_deliveries_state_next_attempt_at", "state", "next_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.channel} {self.state}>"


class Event(Base):
    """The timeline: every state change, tagged ``source:subject:action``."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    study_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONVariant, default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.tag}>"
