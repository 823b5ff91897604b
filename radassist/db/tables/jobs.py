"""What we did with a study: jobs, drafts, deliveries (the outbox), and the timeline of events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radassist.db.base import Base, JSONVariant, enum_column, utcnow
from radassist.states import DeliveryChannel, DeliveryState, JobPriority, JobState


class Job(Base):
    """One drafting of one study: from queued to every output delivered (or failed)."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    study_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    state: Mapped[JobState] = mapped_column(enum_column(JobState), default=JobState.QUEUED, index=True)
    model_name: Mapped[str] = mapped_column(String(256))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[JobPriority] = mapped_column(
        enum_column(JobPriority), default=JobPriority.ROUTINE, server_default=JobPriority.ROUTINE.value
    )
    """STAT (from the RIS order's priority or the pipeline's ``stat``) or routine; STAT goes first."""
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    held_by: Mapped[str | None] = mapped_column(String(255))
    """The Celery node name (``name@host``) of the worker that last claimed it for preparing or
    drafting: that worker starting again hands it back (:mod:`radassist.drafting.recover`)."""
    sr_sop_instance_uid: Mapped[str | None] = mapped_column(String(64))
    """Derived once from the job id, so a retried delivery re-sends the same object."""
    sr_path: Mapped[str | None] = mapped_column(String(512))
    """Relative to ``[storage] path``/outputs."""
    shadow: Mapped[bool] = mapped_column(default=False, server_default=false())
    """Drafted by a shadow model (``[[quality.shadows]]``): measured, never delivered, never the study's latest job."""
    supersedes_job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL", name="fk_jobs_supersedes_job_id_jobs")
    )
    """The study's previous job when this one re-drafts a grown study: its SR is the predecessor."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    drafted_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]

    study: Mapped[Study] = relationship(back_populates="jobs")
    draft: Mapped[Draft | None] = relationship(back_populates="job", uselist=False)
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="job", order_by="Delivery.created_at")

    # The worklist's "latest job of a study" anti-join (ops migration 0006).
    __table_args__ = (Index("ix_jobs_study_id_created_at_id", "study_id", "created_at", "id"),)

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
    profile: Mapped[str | None] = mapped_column(String(64))
    """The prompt profile it was drafted with (the review queue filters on it)."""
    warnings: Mapped[list[dict[str, str]]] = mapped_column(JSONVariant, default=list)
    """What the safety gate decided: one ``{check, policy, message}`` per warning."""
    warning_checks: Mapped[str] = mapped_column(String(128), default="")
    """The checks that fired, space-separated with a space at each end (the worklist filters on it)."""

    job: Mapped[Job] = relationship(back_populates="draft")

    def __repr__(self) -> str:
        return f"<Draft {self.id} job={self.job_id}>"


class Delivery(Base):
    """One output to one destination: its own state, attempts and next try (the outbox)."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    channel: Mapped[DeliveryChannel] = mapped_column(enum_column(DeliveryChannel))
    destination: Mapped[str] = mapped_column(String(64))
    state: Mapped[DeliveryState] = mapped_column(enum_column(DeliveryState), default=DeliveryState.PENDING)
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
    held_by: Mapped[str | None] = mapped_column(String(255))
    """The io worker (Celery node name) of its last claim: while it is ``sending``, a restart of that
    worker under its name or its silence hands it back (:mod:`radassist.delivery.recover`)."""

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
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONVariant, default=dict)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # Only the events of a job: a lookup by job (its cascade) never asks for NULL, and the
        # listener's event for each received instance (no job) then writes no page here (0015).
        Index(
            "ix_events_job_id", "job_id", sqlite_where=text("job_id IS NOT NULL"),
            postgresql_where=text("job_id IS NOT NULL"),
        ),  # fmt: skip
    )

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.tag}>"




if TYPE_CHECKING:
    from radassist.db.tables.studies import Study
