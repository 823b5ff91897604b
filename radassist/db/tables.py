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
    patient_age: Mapped[str | None] = mapped_column(String(4))
    """PatientAge as sent (e.g. ``064Y``), for the worklist; filled at intake when known."""
    patient_sex: Mapped[str | None] = mapped_column(String(1))
    """PatientSex as sent (``F``, ``M``, ``O``), for the worklist; filled at intake when known."""

    series: Mapped[list[Series]] = relationship(back_populates="study", passive_deletes=True)
    jobs: Mapped[list[Job]] = relationship(back_populates="study", order_by="Job.created_at")

    __table_args__ = (
        Index("ix_studies_state_last_received_at", "state", "last_received_at"),
        # The worklist's order (newest first) and its filters (ops migration 0006).
        Index("ix_studies_last_received_at_id", "last_received_at", "id"),
        Index("ix_studies_accession_number_hash", "accession_number_hash"),
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


class Order(Base):
    """An imaging order from the RIS (ORM^O01 / OMI^O23), joined to its study by accession hash.

    Holds the clinical text the prompt and the ORU need (indication, requested procedure, order
    numbers); the accession number itself is kept only as its hash, as on ``studies``.
    """

    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    accession_number_hash: Mapped[str] = mapped_column(String(16), unique=True)
    placer_order_number: Mapped[str | None] = mapped_column(String(200))
    placer_namespace: Mapped[str | None] = mapped_column(String(64))
    filler_order_number: Mapped[str | None] = mapped_column(String(200))
    filler_namespace: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    indication: Mapped[str | None] = mapped_column(Text)
    procedure_code: Mapped[str | None] = mapped_column(String(64))
    procedure_text: Mapped[str | None] = mapped_column(String(200))
    procedure_system: Mapped[str | None] = mapped_column(String(32))
    order_control: Mapped[str | None] = mapped_column(String(4))
    """ORC-1 of the last message (NW, XO, CA, ...)."""
    order_status: Mapped[str | None] = mapped_column(String(4))
    control_id: Mapped[str | None] = mapped_column(String(64))
    """MSH-10 of the last message that changed this order."""
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_orders_placer_order_number", "placer_order_number"),
        Index("ix_orders_filler_order_number", "filler_order_number"),
    )

    def __repr__(self) -> str:
        return f"<Order {self.id} {self.order_control}>"


class Report(Base):
    """A signed (final or corrected) report from the RIS, kept for draft-vs-final comparison."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    accession_number_hash: Mapped[str] = mapped_column(String(16), index=True)
    study_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("studies.id", ondelete="SET NULL"), index=True)
    """The study, when it was known at receipt; otherwise join on the accession hash."""
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(1))
    """OBR-25: F (final) or C (corrected)."""
    text: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[str | None] = mapped_column(String(32))
    """OBR-22 (or OBR-7) as sent, an HL7 DTM."""
    control_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("accession_number_hash", "control_id", name="uq_reports_accession_control_id"),
    )

    def __repr__(self) -> str:
        return f"<Report {self.id} {self.status}>"


class InboundMessage(Base):
    """Every HL7 message the inbound listener answered; the raw text only of those not accepted (AA)."""

    __tablename__ = "inbound_messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    message_type: Mapped[str | None] = mapped_column(String(16))
    control_id: Mapped[str | None] = mapped_column(String(64))
    ack_code: Mapped[str] = mapped_column(String(2))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    """Why it was not accepted, without patient data."""
    raw: Mapped[str | None] = mapped_column(Text)
    """The message as received, for inspection (kept only when not accepted; never logged)."""
    peer: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<InboundMessage {self.id} {self.ack_code}>"


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


# --- operations: users, sessions, API tokens, audit log, intake pauses (migration 0006) ---


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
