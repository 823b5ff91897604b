"""Process one inbound HL7 message from the RIS and decide its ACK.

* ORM^O01 and OMI^O23: the order (order numbers, priority, indication, requested procedure) is
  stored per accession number hash, so the drafting prompt and our ORU can use it.
* ORU^R01 with OBR-25 F or C: the signed report is stored for its accession (and study, when
  already received), for a later draft-vs-final comparison; other result statuses are
  acknowledged and not stored.

AR: the message cannot be read or is of a type or version we do not take (resending the same
bytes cannot help).  AE: it was read but cannot be processed (a required field is missing, the
database failed); the sender may correct or resend it.  AA only after the database commit.
Every message leaves an ``inbound_messages`` row; its raw text is kept only when it was not
accepted, for inspection.  Nothing a message carries is ever logged except its type and MSH-10.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import hl7
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from radassist.config import Hl7Settings
from radassist.db.tables import InboundMessage, Order, Report, Study
from radassist.events import EventTag, record_event
from radassist.hl7.ack import AckCode, ErrorCode, InboundHeader, build_ack, read_header
from radassist.identifiers import accession_hash
from radassist.ris.context import FINAL_STATUSES

logger = logging.getLogger(__name__)

ORDER_TYPES = frozenset({("ORM", "O01"), ("OMI", "O23")})
RESULT_TYPES = frozenset({("ORU", "R01")})
_TEXT_VALUE_TYPES = frozenset({"TX", "FT", "ST"})
_STUDY_UID_CODE = "110180"  # an OBX carrying the Study Instance UID is a link, not report text


class InboundProblem(Exception):
    """Why a message is not accepted: the ACK code, table 0357 code and a reason without patient data."""

    def __init__(self, ack: AckCode, error: ErrorCode, reason: str, code: str) -> None:
        super().__init__(reason)
        self.ack = ack
        self.error = error
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class InboundOutcome:
    """What was answered; ``ack`` is the ER7 text to send back."""

    ack: str
    ack_code: AckCode
    message_type: str | None
    control_id: str | None
    error_code: str | None = None
    reason: str | None = None
    orders: int = 0
    reports: int = 0


def decode(payload: bytes) -> str:
    """Bytes from the wire as text: UTF-8, or ISO 8859-1 when MSH-18 says so or UTF-8 fails."""
    head = payload[:512].split(b"\r", 1)[0]
    if b"8859" in head:
        return payload.decode("latin-1")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def _value(segment: hl7.Segment, field_no: int, component: int = 1, repeat: int = 1) -> str:
    """One component of one field, unescaped, or "" when absent."""
    try:
        value = segment.extract_field(1, field_no, repeat, component, 1)
    except (IndexError, AttributeError, TypeError, ValueError):
        return ""
    return str(value or "").strip()


def _repeats(segment: hl7.Segment, field_no: int, component: int = 1, limit: int = 20) -> list[str]:
    values = []
    for repeat in range(1, limit + 1):
        try:
            segment.extract_field(1, field_no, repeat, 1, 1)
        except (IndexError, AttributeError, TypeError):
            break
        value = _value(segment, field_no, component, repeat)
        if value:
            values.append(value)
    return values


def _name(segment: hl7.Segment) -> str:
    return str(segment[0]).strip().upper()


@dataclass
class _OrderBlock:
    orc: hl7.Segment | None = None
    obr: hl7.Segment | None = None
    others: list[hl7.Segment] = field(default_factory=list)


def _blocks(message: hl7.Message) -> Iterator[_OrderBlock]:
    """ORC/OBR blocks in message order: each OBR with the ORC before it, and the segments between
    that ORC and the next ORC/OBR (TQ1 comes before OBR in OMI^O23, IPC and OBX after it)."""
    current: _OrderBlock | None = None
    pending_orc: hl7.Segment | None = None
    pending: list[hl7.Segment] = []
    for segment in message:
        name = _name(segment)
        if name == "ORC":
            if current is not None and current.obr is not None:
                yield current
                current = None
            pending_orc, pending = segment, []
        elif name == "OBR":
            if current is not None and current.obr is not None:
                yield current
            current = _OrderBlock(orc=pending_orc, obr=segment, others=pending)
            pending_orc, pending = None, []
        elif current is not None:
            current.others.append(segment)
        elif pending_orc is not None:
            pending.append(segment)
    if current is not None and current.obr is not None:
        yield current


def _order_number(block: _OrderBlock, field_no: int) -> tuple[str, str]:
    """(entity id, namespace) from ORC-n, else OBR-n (ORC-2/OBR-2 placer, ORC-3/OBR-3 filler)."""
    for segment in (block.orc, block.obr):
        if segment is not None and _value(segment, field_no):
            return _value(segment, field_no), _value(segment, field_no, 2)
    return "", ""


def _accession(block: _OrderBlock, settings: Hl7Settings) -> str:
    """IPC-1 (OMI^O23) when present, else the configured field (OBR-18, or the filler number)."""
    for segment in block.others:
        if _name(segment) == "IPC" and _value(segment, 1):
            return _value(segment, 1)
    assert block.obr is not None
    if settings.accession_field == "OBR-18":
        return _value(block.obr, 18)
    return _order_number(block, 3)[0]


def _priority(block: _OrderBlock) -> str:
    for segment in block.others:
        if _name(segment) == "TQ1" and _value(segment, 9):
            return _value(segment, 9)
    assert block.obr is not None
    candidates = [_value(block.obr, 27, 6)]
    if block.orc is not None:
        candidates.append(_value(block.orc, 7, 6))
    candidates.append(_value(block.obr, 5))
    return next((c for c in candidates if c), "")


def _indication(obr: hl7.Segment) -> str:
    """OBR-31 reason for study (each repetition's text, else its code), then OBR-13."""
    parts: list[str] = []
    for repeat in range(1, 11):
        try:
            obr.extract_field(1, 31, repeat, 1, 1)
        except (IndexError, AttributeError, TypeError):
            break
        text = _value(obr, 31, 2, repeat) or _value(obr, 31, 1, repeat)
        if text and text not in parts:
            parts.append(text)
    clinical = _value(obr, 13)
    if clinical and clinical not in parts:
        parts.append(clinical)
    return "; ".join(parts)


def _clip(value: str, length: int) -> str | None:
    return value[:length] if value else None


def _store_orders(
    session: Session, message: hl7.Message, header: InboundHeader, settings: Hl7Settings, now: dt.datetime
) -> int:
    blocks = list(_blocks(message))
    if not blocks:
        raise InboundProblem(
            AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "the order has no OBR segment", "hl7.inbound.no_obr"
        )
    count = 0
    for block in blocks:
        assert block.obr is not None
        accession = _accession(block, settings)
        if not accession:
            where = (
                "IPC-1 or " + settings.accession_field
                if header.message_type == "OMI"
                else settings.accession_field
            )
            raise InboundProblem(
                AckCode.AE,
                ErrorCode.REQUIRED_FIELD_MISSING,
                f"no accession number in {where}",
                "hl7.inbound.no_accession",
            )
        digest = accession_hash(accession)
        assert digest is not None
        placer, placer_ns = _order_number(block, 2)
        filler, filler_ns = _order_number(block, 3)
        values = {
            "placer_order_number": _clip(placer, 200),
            "placer_namespace": _clip(placer_ns, 64),
            "filler_order_number": _clip(filler, 200),
            "filler_namespace": _clip(filler_ns, 64),
            "priority": _clip(_priority(block), 16),
            "indication": _indication(block.obr) or None,
            "procedure_code": _clip(_value(block.obr, 4, 1), 64),
            "procedure_text": _clip(_value(block.obr, 4, 2), 200),
            "procedure_system": _clip(_value(block.obr, 4, 3), 32),
            "order_control": _clip(_value(block.orc, 1).upper(), 4) if block.orc is not None else None,
            "order_status": _clip(_value(block.orc, 5).upper(), 4) if block.orc is not None else None,
        }
        order = session.scalars(select(Order).where(Order.accession_number_hash == digest)).first()
        if order is None:
            order = Order(accession_number_hash=digest, received_at=now, **values)
            session.add(order)
        else:
            # A change (XO) or status message may leave fields empty: keep what we knew.
            for key, value in values.items():
                if value:
                    setattr(order, key, value)
        order.control_id = header.control_id[:64]
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
            control_id=header.control_id[:64],
        )
        count += 1
    return count


def _report_text(block: _OrderBlock) -> str:
    lines: list[str] = []
    for segment in block.others:
        if _name(segment) != "OBX":
            continue
        if _value(segment, 2).upper() not in _TEXT_VALUE_TYPES or _value(segment, 3) == _STUDY_UID_CODE:
            continue
        for value in _repeats(segment, 5):
            lines.extend(value.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line.rstrip() for line in lines).strip()


def _find_order(session: Session, block: _OrderBlock) -> Order | None:
    placer, _ = _order_number(block, 2)
    filler, _ = _order_number(block, 3)
    conditions = []
    if filler:
        conditions.append(Order.filler_order_number == filler)
    if placer:
        conditions.append(Order.placer_order_number == placer)
    if not conditions:
        return None
    return session.scalars(select(Order).where(or_(*conditions)).order_by(Order.updated_at.desc())).first()


def _store_reports(
    session: Session, message: hl7.Message, header: InboundHeader, settings: Hl7Settings, now: dt.datetime
) -> int:
    blocks = list(_blocks(message))
    if not blocks:
        raise InboundProblem(
            AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "the result has no OBR segment", "hl7.inbound.no_obr"
        )
    stored = 0
    for block in blocks:
        assert block.obr is not None
        status = _value(block.obr, 25).upper()
        if status not in FINAL_STATUSES:
            continue  # preliminary results are acknowledged, not kept
        accession = _accession(block, settings)
        order = None
        if accession:
            digest = accession_hash(accession)
        else:
            order = _find_order(session, block)
            if order is None:
                raise InboundProblem(
                    AckCode.AE,
                    ErrorCode.REQUIRED_FIELD_MISSING,
                    f"no accession number in {settings.accession_field} and no known order for its order numbers",
                    "hl7.inbound.no_accession",
                )
            digest = order.accession_number_hash
        assert digest is not None
        text = _report_text(block)
        if not text:
            raise InboundProblem(
                AckCode.AE,
                ErrorCode.REQUIRED_FIELD_MISSING,
                "the final result has no text OBX",
                "hl7.inbound.no_text",
            )
        if order is None:
            order = session.scalars(select(Order).where(Order.accession_number_hash == digest)).first()
        study_id = session.scalars(select(Study.id).where(Study.accession_number_hash == digest)).first()
        control_id = header.control_id[:64]
        duplicate = session.scalars(
            select(Report.id).where(Report.accession_number_hash == digest, Report.control_id == control_id)
        ).first()
        if duplicate is not None:
            continue  # a resend after a lost ACK: already stored
        report = Report(
            accession_number_hash=digest,
            study_id=study_id,
            order_id=order.id if order is not None else None,
            status=status,
            text=text,
            observed_at=_clip(_value(block.obr, 22) or _value(block.obr, 7), 32),
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
        stored += 1
    return stored


def _check(text: str) -> tuple[InboundHeader, hl7.Message]:
    header = read_header(text)
    if header is None:
        raise InboundProblem(
            AckCode.AR,
            ErrorCode.SEGMENT_SEQUENCE,
            "the message does not start with an MSH segment",
            "hl7.inbound.malformed",
        )
    if not header.control_id:
        raise InboundProblem(
            AckCode.AR,
            ErrorCode.REQUIRED_FIELD_MISSING,
            "MSH-10 (control id) is empty",
            "hl7.inbound.malformed",
        )
    if not header.version.startswith("2."):
        raise InboundProblem(
            AckCode.AR,
            ErrorCode.UNSUPPORTED_VERSION,
            "MSH-12 is not an HL7 v2 version",
            "hl7.inbound.version",
        )
    kind = (header.message_type, header.trigger_event)
    if kind not in ORDER_TYPES | RESULT_TYPES:
        label = f"{header.message_type[:3]}^{header.trigger_event[:3]}"
        error = (
            ErrorCode.UNSUPPORTED_EVENT
            if header.message_type in {"ORM", "OMI", "ORU"}
            else ErrorCode.UNSUPPORTED_MESSAGE_TYPE
        )
        raise InboundProblem(
            AckCode.AR, error, f"message type {label} is not accepted here", "hl7.inbound.unsupported"
        )
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r"))
    except Exception:  # python-hl7 raises several types; the message text must not reach a log
        raise InboundProblem(
            AckCode.AR, ErrorCode.DATA_TYPE, "the message cannot be parsed", "hl7.inbound.malformed"
        ) from None
    return header, message


def handle_message(
    session_factory: Callable[[], Session],
    text: str,
    settings: Hl7Settings,
    *,
    peer: str | None = None,
    now: dt.datetime | None = None,
) -> InboundOutcome:
    """Process one inbound message (decoded text) and return the ACK to send."""
    now = now or dt.datetime.now(dt.UTC)
    header: InboundHeader | None = read_header(text)

    def ack(code: AckCode, error: ErrorCode | None = None, reason: str = "") -> str:
        return build_ack(
            header,
            code,
            error=error,
            text=reason,
            now=now,
            sending_application=settings.sending_application,
            sending_facility=settings.sending_facility,
        )

    message_type = f"{header.message_type}^{header.trigger_event}"[:16] if header else None
    control_id = header.control_id[:64] if header else None
    try:
        checked, message = _check(text)
        kind = (checked.message_type, checked.trigger_event)
        with session_factory() as session:
            if kind in ORDER_TYPES:
                orders, reports = _store_orders(session, message, checked, settings, now), 0
            else:
                orders, reports = 0, _store_reports(session, message, checked, settings, now)
            session.add(
                InboundMessage(
                    received_at=now,
                    message_type=message_type,
                    control_id=control_id,
                    ack_code=AckCode.AA.value,
                    peer=_clip(peer or "", 64),
                )
            )
            session.commit()
    except InboundProblem as problem:
        outcome = InboundOutcome(
            ack=ack(problem.ack, problem.error, problem.reason),
            ack_code=problem.ack,
            message_type=message_type,
            control_id=control_id,
            error_code=problem.code,
            reason=problem.reason,
        )
    except SQLAlchemyError as exc:
        reason = f"the message could not be stored ({type(exc).__name__}); send it again"
        logger.warning(
            "inbound %s control_id=%s not stored: %s", message_type, control_id, type(exc).__name__
        )
        outcome = InboundOutcome(
            ack=ack(AckCode.AE, ErrorCode.INTERNAL, reason),
            ack_code=AckCode.AE,
            message_type=message_type,
            control_id=control_id,
            error_code="hl7.inbound.db",
            reason=reason,
        )
    except Exception as exc:  # a bug of ours must still be answered, and leave no message text in a log
        reason = f"the message could not be processed ({type(exc).__name__})"
        logger.error("inbound %s control_id=%s failed: %s", message_type, control_id, type(exc).__name__)
        outcome = InboundOutcome(
            ack=ack(AckCode.AE, ErrorCode.INTERNAL, reason),
            ack_code=AckCode.AE,
            message_type=message_type,
            control_id=control_id,
            error_code="hl7.inbound.internal",
            reason=reason,
        )
    else:
        logger.info(
            "inbound %s control_id=%s accepted: %d order(s), %d final report(s)",
            message_type,
            control_id,
            orders,
            reports,
        )
        return InboundOutcome(
            ack=ack(AckCode.AA),
            ack_code=AckCode.AA,
            message_type=message_type,
            control_id=control_id,
            orders=orders,
            reports=reports,
        )
    logger.warning(
        "inbound %s control_id=%s answered %s (%s)",
        message_type,
        control_id,
        outcome.ack_code.value,
        outcome.error_code,
    )
    _keep(session_factory, text, outcome, now, peer)
    return outcome


def _no_nul(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value else value


def _keep(
    session_factory: Callable[[], Session],
    text: str,
    outcome: InboundOutcome,
    now: dt.datetime,
    peer: str | None,
) -> None:
    """Keep a message we did not accept, for inspection; failing that, the ACK still goes out.

    NUL characters are kept as U+FFFD: PostgreSQL text cannot hold them, and a message with a
    NUL byte (never valid HL7) was otherwise lost there, the one kind most worth inspecting.
    """
    try:
        with session_factory() as session:
            session.add(
                InboundMessage(
                    received_at=now,
                    message_type=_no_nul(outcome.message_type),
                    control_id=_no_nul(outcome.control_id),
                    ack_code=outcome.ack_code.value,
                    error_code=outcome.error_code,
                    error=_no_nul(outcome.reason),
                    raw=_no_nul(text),
                    peer=_clip(peer or "", 64),
                )
            )
            session.commit()
    except SQLAlchemyError as exc:
        logger.error(
            "inbound message control_id=%s could not be kept: %s", outcome.control_id, type(exc).__name__
        )
