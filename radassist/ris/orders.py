"""Storing the orders of an ORM^O01 or OMI^O23, one row per accession number hash.

Each order attribute is read from the positions of :data:`ORDER_FIELDS`, the first non-empty
one winning, and kept to its column's length; the interface specification renders the same
table.  A later message for the same accession (a change, a status) updates what it carries and
keeps what it leaves empty.  The accession number itself is kept only as its hash.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.config import Hl7Settings
from radassist.db.handles import handle_of_study
from radassist.db.tables import Order, Study
from radassist.events import EventTag, record_event
from radassist.identifiers import accession_hash
from radassist.logging import log_context
from radassist.ris.priority import is_stat, raise_to_stat
from radassist.ris.reading import Block, Inbound, blocks, first, repetitions, value
from radassist.ris.refusals import InboundProblem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadField:
    """An order attribute: the positions it is read from (first non-empty wins) and what it is for."""

    column: str
    paths: tuple[str, ...]
    length: int
    use: str


ORDER_FIELDS: tuple[ReadField, ...] = (
    ReadField("placer_order_number", ("ORC-2.1", "OBR-2.1"), 200, "ORC-2/OBR-2 of our ORU^R01"),
    ReadField("placer_namespace", ("ORC-2.2", "OBR-2.2"), 64, "with the placer number"),
    ReadField("filler_order_number", ("ORC-3.1", "OBR-3.1"), 200, "ORC-3/OBR-3 of our ORU^R01"),
    ReadField("filler_namespace", ("ORC-3.2", "OBR-3.2"), 64, "with the filler number"),
    ReadField(
        "priority", ("TQ1-9", "OBR-27.6", "ORC-7.6", "OBR-5"), 16, "shown to the model and on the study page"
    ),
    ReadField("procedure_code", ("OBR-4.1",), 64, "OBR-4 of our ORU^R01 and the SR's requested procedure"),
    ReadField("procedure_text", ("OBR-4.2",), 200, "as OBR-4.1"),
    ReadField("procedure_system", ("OBR-4.3",), 32, "as OBR-4.1"),
    ReadField("order_control", ("ORC-1",), 4, "kept (NW, XO, CA, ...): the latest message's"),
    ReadField("order_status", ("ORC-5",), 4, "kept"),
)

#: Where the accession number is read, by ``[hl7] accession_field`` (first non-empty wins).
ACCESSION_PATHS: dict[str, tuple[str, ...]] = {
    "OBR-18": ("IPC-1", "OBR-18"),
    "OBR-3": ("IPC-1", "ORC-3.1", "OBR-3.1"),
}

INDICATION_RULE = (
    "OBR-31 (reason for study): each repetition's text (CE.2), else its code; then OBR-13 (relevant "
    "clinical information); distinct values joined by `; `. Used in the drafting prompt and the SR"
)


def accession(block: Block, settings: Hl7Settings) -> str:
    """The block's accession number, from :data:`ACCESSION_PATHS`."""
    return first(block, ACCESSION_PATHS[settings.accession_field])


def indication(block: Block) -> str:
    """The reason for the study, by :data:`INDICATION_RULE`."""
    obr, marks = block.obr, block.delimiters
    parts: list[str] = []
    if obr is not None:
        for repeat in range(1, min(repetitions(obr, 31), 10) + 1):
            text = value(obr, 31, marks, 2, repeat) or value(obr, 31, marks, 1, repeat)
            if text and text not in parts:
                parts.append(text)
    clinical = value(obr, 13, marks)
    if clinical and clinical not in parts:
        parts.append(clinical)
    return "; ".join(parts)


def order_values(block: Block) -> dict[str, str | None]:
    """The order's columns from the block (None where the message says nothing)."""
    values: dict[str, str | None] = {
        spec.column: first(block, spec.paths)[: spec.length] or None for spec in ORDER_FIELDS
    }
    for key in ("order_control", "order_status"):
        code = values[key]
        values[key] = code.upper() if code else None
    values["indication"] = indication(block) or None
    return values


def _store_one(session: Session, block: Block, digest: str, control_id: str, now: dt.datetime) -> None:
    values = order_values(block)
    order = session.scalars(select(Order).where(Order.accession_number_hash == digest)).first()
    if order is None:
        order = Order(accession_number_hash=digest, received_at=now, **values)
        session.add(order)
    else:
        # A change (XO) or status message may leave fields empty: keep what we knew.
        for key, new in values.items():
            if new:
                setattr(order, key, new)
    order.control_id = control_id
    order.updated_at = now
    session.flush()
    study_id = session.scalars(select(Study.id).where(Study.accession_number_hash == digest)).first()
    record_event(
        session,
        EventTag.HL7_ORDER_RECEIVED,
        study_id=study_id,
        order_id=str(order.id),
        accession_hash=digest,
        order_control=order.order_control,
        control_id=control_id,
    )
    if study_id is not None:
        with log_context(study=handle_of_study(session, study_id)):
            logger.info("the RIS's order for a received study is stored")
            if is_stat(order.priority) and raise_to_stat(session, study_id):
                logger.info("the order says STAT: the study's jobs go first")


def store_orders(session: Session, inbound: Inbound, settings: Hl7Settings, now: dt.datetime) -> int:
    """Store every order block of ``inbound``; the number stored.  Raises :class:`InboundProblem`."""
    found = list(blocks(inbound))
    if not found:
        raise InboundProblem("no_obr", "the order has no OBR segment")
    for block in found:
        number = accession(block, settings)
        if not number:
            paths = ACCESSION_PATHS[settings.accession_field]
            where = " or ".join(paths if inbound.header.message_type == "OMI" else paths[1:])
            raise InboundProblem("no_accession", f"no accession number in {where}")
        digest = accession_hash(number)
        assert digest is not None
        _store_one(session, block, digest, inbound.header.control_id[:64], now)
    return len(found)
