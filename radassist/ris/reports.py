"""Storing the signed reports of an ORU^R01: final (F) and corrected (C) results only.

A result is joined to its accession (read as for orders), else to a known order by its placer or
filler number; its text is every text OBX's value (TX, FT, ST; not the OBX carrying a Study
Instance UID), line by line.  Results with another OBR-25 are acknowledged and not kept.  A
result resent with the same MSH-10 (our ACK was lost) is stored once.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radassist.config import Hl7Settings
from radassist.db.handles import handle_of_study
from radassist.db.tables import Order, Report, Study
from radassist.events import EventTag, record_event
from radassist.identifiers import accession_hash
from radassist.logging import log_context
from radassist.ris.context import FINAL_STATUSES
from radassist.ris.orders import accession
from radassist.ris.reading import Block, Inbound, blocks, first, read, repetitions, value
from radassist.ris.refusals import InboundProblem

logger = logging.getLogger(__name__)

TEXT_VALUE_TYPES = frozenset({"TX", "FT", "ST"})
STUDY_UID_CODE = "110180"  # an OBX carrying the Study Instance UID is a link, not report text

#: What a result's fields are used for (the specification lists this table).
REPORT_FIELDS: tuple[tuple[str, str], ...] = (
    ("OBR-25", "result status: F or C is stored, anything else is acknowledged only"),
    ("IPC-1 / OBR-18 or ORC-3.1/OBR-3.1", "accession number, as for orders (`[hl7] accession_field`)"),
    ("ORC-2.1/OBR-2.1, ORC-3.1/OBR-3.1", "a known order's numbers, when the result has no accession"),
    ("OBR-22, else OBR-7", "when the result was observed"),
    ("OBX-2", "TX, FT and ST values are report text"),
    ("OBX-3.1", "`110180` (Study Instance UID) is skipped"),
    ("OBX-5", "the report text, every repetition; line breaks (`\\.br\\`, CR, LF) kept"),
)


def report_text(block: Block) -> str:
    """The block's report text, one line per line of its text OBX values."""
    lines: list[str] = []
    marks = block.delimiters
    for obx in block.all("OBX"):
        if value(obx, 2, marks).upper() not in TEXT_VALUE_TYPES or value(obx, 3, marks) == STUDY_UID_CODE:
            continue
        for repeat in range(1, min(repetitions(obx, 5), 20) + 1):
            text = value(obx, 5, marks, 1, repeat)
            if text:
                lines.extend(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line.rstrip() for line in lines).strip()


def _known_order(session: Session, block: Block) -> Order | None:
    placer = first(block, ("ORC-2.1", "OBR-2.1"))
    filler = first(block, ("ORC-3.1", "OBR-3.1"))
    conditions = []
    if filler:
        conditions.append(Order.filler_order_number == filler)
    if placer:
        conditions.append(Order.placer_order_number == placer)
    if not conditions:
        return None
    return session.scalars(select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())).first()


def _accession_and_order(session: Session, block: Block, settings: Hl7Settings) -> tuple[str, Order | None]:
    number = accession(block, settings)
    if number:
        digest = accession_hash(number)
        assert digest is not None
        order = session.scalars(select(Order).where(Order.accession_number_hash == digest)).first()
        return digest, order
    order = _known_order(session, block)
    if order is None or not order.accession_number_hash:
        raise InboundProblem(
            "no_accession",
            f"no accession number in {settings.accession_field} and no known order for its order numbers",
        )
    return order.accession_number_hash, order


def _store_one(
    session: Session, block: Block, status: str, settings: Hl7Settings, control_id: str, now: dt.datetime
) -> bool:
    digest, order = _accession_and_order(session, block, settings)
    text = report_text(block)
    if not text:
        raise InboundProblem("no_text")
    duplicate = session.scalars(
        select(Report.id).where(Report.accession_number_hash == digest, Report.control_id == control_id)
    ).first()
    if duplicate is not None:
        return False  # a resend after a lost ACK: already stored
    study_id = session.scalars(select(Study.id).where(Study.accession_number_hash == digest)).first()
    report = Report(
        accession_number_hash=digest,
        study_id=study_id,
        order_id=order.id if order is not None else None,
        status=status,
        text=text,
        observed_at=(read(block, "OBR-22") or read(block, "OBR-7"))[:32] or None,
        control_id=control_id,
        received_at=now,
    )
    session.add(report)
    session.flush()
    record_event(
        session,
        EventTag.HL7_REPORT_RECEIVED,
        study_id=study_id,
        report_id=str(report.id),
        accession_hash=digest,
        status=status,
        control_id=control_id,
    )
    if study_id is not None:
        with log_context(study=handle_of_study(session, study_id)):
            logger.info("the RIS's signed report for a received study is stored")
    return True


def store_reports(session: Session, inbound: Inbound, settings: Hl7Settings, now: dt.datetime) -> int:
    """Store the final and corrected results of ``inbound``; the number stored."""
    found = list(blocks(inbound))
    if not found:
        raise InboundProblem("no_obr", "the result has no OBR segment")
    stored = 0
    for block in found:
        status = read(block, "OBR-25").upper()
        if status in FINAL_STATUSES:
            stored += _store_one(session, block, status, settings, inbound.header.control_id[:64], now)
    return stored
