"""One inbound message from the RIS: read it, store what it carries, decide the ACK.

AA only after the database commit.  Every message leaves an ``inbound_messages`` row; its raw
text is kept only when it was not accepted, for inspection.  Nothing a message carries is ever
logged except its type and MSH-10.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from radassist.config import Hl7Settings
from radassist.db.tables import InboundMessage
from radassist.hl7.ack import AckCode, InboundHeader, build_ack, read_header
from radassist.ris.orders import store_orders
from radassist.ris.reading import read_message
from radassist.ris.refusals import InboundProblem
from radassist.ris.reports import store_reports

logger = logging.getLogger(__name__)


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


def _clip(value: str | None, length: int) -> str | None:
    return value[:length] if value else None


def _no_nul(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value else value


def _store(
    session_factory: Callable[[], Session],
    text: str,
    settings: Hl7Settings,
    peer: str | None,
    now: dt.datetime,
) -> tuple[int, int]:
    """Store the message's orders or reports and its ``inbound_messages`` row in one commit."""
    inbound = read_message(text)
    header = inbound.header
    with session_factory() as session:
        if inbound.is_order:
            counts = store_orders(session, inbound, settings, now), 0
        else:
            counts = 0, store_reports(session, inbound, settings, now)
        session.add(
            InboundMessage(
                received_at=now,
                message_type=f"{header.message_type}^{header.trigger_event}"[:16],
                control_id=header.control_id[:64],
                ack_code=AckCode.AA.value,
                peer=_clip(peer, 64),
            )
        )
        session.commit()
    return counts


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
    message_type = f"{header.message_type}^{header.trigger_event}"[:16] if header else None
    control_id = header.control_id[:64] if header else None
    try:
        orders, reports = _store(session_factory, text, settings, peer, now)
    except InboundProblem as found:
        problem = found
    except SQLAlchemyError as exc:
        problem = InboundProblem(
            "database", f"the message could not be stored ({type(exc).__name__}); send it again"
        )
    except Exception as exc:  # a bug of ours must still be answered, and leave no message text in a log
        logger.error("inbound %s control_id=%s failed: %s", message_type, control_id, type(exc).__name__)
        problem = InboundProblem("internal", f"the message could not be processed ({type(exc).__name__})")
    else:
        logger.info(
            "inbound %s control_id=%s accepted: %d order(s), %d final report(s)",
            message_type,
            control_id,
            orders,
            reports,
        )
        ack = build_ack(
            header,
            AckCode.AA,
            now=now,
            sending_application=settings.sending_application,
            sending_facility=settings.sending_facility,
        )
        return InboundOutcome(ack, AckCode.AA, message_type, control_id, orders=orders, reports=reports)
    outcome = InboundOutcome(
        ack=answer(header, problem, settings, now),
        ack_code=problem.ack,
        message_type=message_type,
        control_id=control_id,
        error_code=problem.code,
        reason=problem.reason,
    )
    logger.warning(
        "inbound %s control_id=%s answered %s (%s)", message_type, control_id, problem.ack.value, problem.code
    )
    keep_refused(session_factory, text, outcome, now, peer)
    return outcome


def answer(
    header: InboundHeader | None,
    problem: InboundProblem,
    settings: Hl7Settings,
    now: dt.datetime | None = None,
) -> str:
    """The AE/AR for ``problem``, its reason in MSA-3 (and ERR)."""
    return build_ack(
        header,
        problem.ack,
        error=problem.error,
        text=problem.reason,
        now=now,
        sending_application=settings.sending_application,
        sending_facility=settings.sending_facility,
    )


def keep_refused(
    session_factory: Callable[[], Session],
    text: str,
    outcome: InboundOutcome,
    now: dt.datetime,
    peer: str | None,
) -> None:
    """Keep a message we did not accept, for inspection; failing that, the ACK still goes out.

    NUL characters are kept as U+FFFD: PostgreSQL text cannot hold them, and a message with a
    NUL byte (never valid HL7) is the kind most worth inspecting.
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
                    peer=_clip(peer, 64),
                )
            )
            session.commit()
    except SQLAlchemyError as exc:
        logger.error(
            "inbound message control_id=%s could not be kept: %s", outcome.control_id, type(exc).__name__
        )
