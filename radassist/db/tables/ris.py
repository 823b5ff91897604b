"""What the RIS told us: orders, signed reports, and every inbound HL7 message answered."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radassist.db.base import Base, utcnow


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
