"""The read side of what the RIS told us: the order (and any signed report) behind a study.

Orders and reports are joined to studies by the accession number's hash
(:func:`radassist.identifiers.accession_hash`), the only form in which a study keeps it.  The
drafting prompt reads the indication from here, and the ORU builder the order numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Order, Report

#: OBR-25 values of a signed report.
FINAL_STATUSES = frozenset({"F", "C"})


@dataclass(frozen=True)
class OrderContext:
    """What the RIS ordered, plus the last signed report for the same accession, if any.

    Contains clinical text: pass it to the prompt and the ORU builder, never to a log.
    """

    accession_number_hash: str
    placer_order_number: str | None = None
    placer_namespace: str | None = None
    filler_order_number: str | None = None
    filler_namespace: str | None = None
    priority: str | None = None
    indication: str | None = None
    procedure_code: str | None = None
    procedure_text: str | None = None
    procedure_system: str | None = None
    order_control: str | None = None
    final_report_text: str | None = None
    final_report_status: str | None = None

    def __repr__(self) -> str:  # never print the clinical fields
        return f"<OrderContext {self.accession_number_hash} {self.order_control}>"


def latest_final_report(session: Session, accession_number_hash: str) -> Report | None:
    """The newest F/C report for the accession (a correction supersedes the final)."""
    return session.scalars(
        select(Report)
        .where(Report.accession_number_hash == accession_number_hash, Report.status.in_(FINAL_STATUSES))
        .order_by(Report.received_at.desc())
        .limit(1)
    ).first()


def order_context(session: Session, accession_number_hash: str | None) -> OrderContext | None:
    """The order and signed report known for a study's ``accession_number_hash``, or None."""
    if not accession_number_hash:
        return None
    order = session.scalars(select(Order).where(Order.accession_number_hash == accession_number_hash)).first()
    report = latest_final_report(session, accession_number_hash)
    if order is None and report is None:
        return None
    fields = {}
    if order is not None:
        fields = {
            "placer_order_number": order.placer_order_number,
            "placer_namespace": order.placer_namespace,
            "filler_order_number": order.filler_order_number,
            "filler_namespace": order.filler_namespace,
            "priority": order.priority,
            "indication": order.indication,
            "procedure_code": order.procedure_code,
            "procedure_text": order.procedure_text,
            "procedure_system": order.procedure_system,
            "order_control": order.order_control,
        }
    return OrderContext(
        accession_number_hash=accession_number_hash,
        final_report_text=report.text if report is not None else None,
        final_report_status=report.status if report is not None else None,
        **fields,
    )
