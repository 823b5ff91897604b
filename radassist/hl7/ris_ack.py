"""The RIS's acknowledgement of our ORU^R01: what it says, and what happens next.

:data:`ACK_OUTCOMES` (MSA-1 codes) and :data:`TRANSPORT_OUTCOMES` (no usable ACK) decide whether
a delivery is done, retried (:class:`TransientFailure`) or failed for good
(:class:`PermanentFailure`); the interface specification renders both tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from radassist.errors import PermanentFailure, TransientFailure
from radassist.hl7.escaping import Delimiters, clean_line, unescape

_MAX_REASON_CHARS = 200

Next = Literal["done", "retry", "fail"]


@dataclass(frozen=True)
class AckOutcome:
    """What an answer (or its absence) means for the delivery."""

    next: Next
    error_code: str | None
    meaning: str


ACK_OUTCOMES: dict[str, AckOutcome] = {
    "AA": AckOutcome("done", None, "application accept: the RIS took the message; the delivery is done"),
    "CA": AckOutcome("done", None, "commit accept (enhanced mode): taken as accepted"),
    "AE": AckOutcome("retry", "hl7.nack.ae", "application error: sent again later, same bytes and MSH-10"),
    "CE": AckOutcome("retry", "hl7.nack.ae", "commit error: sent again later"),
    "AR": AckOutcome("fail", "hl7.nack.ar", "application reject: the delivery fails with the RIS's reason"),
    "CR": AckOutcome("fail", "hl7.nack.ar", "commit reject: the delivery fails with the RIS's reason"),
}

TRANSPORT_OUTCOMES: dict[str, AckOutcome] = {
    "hl7.unreachable": AckOutcome(
        "retry", "hl7.unreachable", "no connection, or it broke before the whole ACK arrived"
    ),
    "hl7.tls": AckOutcome(
        "retry", "hl7.tls", "the TLS handshake failed or the RIS's certificate is not trusted"
    ),
    "hl7.timeout": AckOutcome("retry", "hl7.timeout", "no whole ACK within `[hl7] ack_timeout_seconds`"),
    "hl7.ack.invalid": AckOutcome(
        "retry", "hl7.ack.invalid", "the reply is not an ACK with an MSA segment, or MSA-1 is unknown"
    ),
    "hl7.ack.mismatch": AckOutcome(
        "retry", "hl7.ack.mismatch", "MSA-2 is not our MSH-10 (or is empty in an AA)"
    ),
    "hl7.frame.unsafe": AckOutcome(
        "fail", "hl7.frame.unsafe", "the stored message holds an MLLP block character: it is never sent"
    ),
}


def failure(code: str, message: str) -> TransientFailure | PermanentFailure:
    """The error for a :data:`TRANSPORT_OUTCOMES` condition."""
    outcome = TRANSPORT_OUTCOMES[code]
    kind = PermanentFailure if outcome.next == "fail" else TransientFailure
    return kind(message, code=code)


@dataclass(frozen=True)
class Ack:
    """The fields of an ACK that decide the outcome."""

    code: str
    control_id: str
    text: str


def _err_text(fields: list[str], component: str) -> str:
    # v2.5+: ERR-8 user message, else ERR-3 code's text; v2.3: ERR-1.
    for index in (8, 3, 1):
        if len(fields) > index and fields[index].strip():
            value = fields[index]
            if index in (3, 1):
                parts = value.split(component)
                value = " ".join(p for p in parts if p and not p.isdigit()) or value
            return value.strip()
    return ""


def delimiters_of(msh: str) -> Delimiters:
    """The separators an MSH segment declares (standard ones where MSH-2 is short)."""
    encoding = msh[4:].split(msh[3], 1)[0]
    standard = Delimiters().encoding_characters
    chars = encoding[:4] + standard[len(encoding[:4]) :]
    return Delimiters(msh[3], chars[0], chars[1], chars[2], chars[3])


def parse_ack(er7: str) -> Ack:
    """Read MSA-1, MSA-2 and the RIS's explanation (MSA-3, ERR-8 or ERR-1) from an ACK.

    Plain parsing on purpose: an ACK is tiny, and a RIS may answer in an HL7 version or with
    a structure a strict parser would refuse, which must not hide whether it accepted.
    """
    segments = [s for s in er7.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 8:
        raise ValueError("not an HL7 message")
    delimiters = delimiters_of(segments[0])
    sep = delimiters.field
    msa = next((s.split(sep) for s in segments if s.startswith("MSA" + sep)), None)
    if msa is None or len(msa) < 2:
        raise ValueError("the ACK has no MSA segment")
    texts = [msa[3].strip()] if len(msa) > 3 and msa[3].strip() else []
    for segment in segments:
        if segment.startswith("ERR" + sep):
            text = _err_text(segment.split(sep), delimiters.component)
            if text:
                texts.append(text)
    text = clean_line(unescape("; ".join(texts), delimiters))[:_MAX_REASON_CHARS]
    return Ack(code=msa[1].strip().upper(), control_id=msa[2].strip() if len(msa) > 2 else "", text=text)


def judge(ack: Ack, control_id: str) -> None:
    """Return when ``ack`` accepts our message ``control_id``; raise what happens next otherwise."""
    if ack.control_id and ack.control_id != control_id:
        raise failure(
            "hl7.ack.mismatch",
            f"the RIS acknowledged another message (MSA-2 {ack.control_id[:20]!r}, expected {control_id!r})",
        )
    outcome = ACK_OUTCOMES.get(ack.code)
    if outcome is None:
        raise failure("hl7.ack.invalid", f"the RIS answered an unknown MSA-1 {ack.code[:4]!r}")
    if outcome.next == "done":
        if not ack.control_id:
            raise failure("hl7.ack.mismatch", "the RIS's ACK has an empty MSA-2")
        return
    reason = f": {ack.text}" if ack.text else ""
    if outcome.next == "fail":
        raise PermanentFailure(f"the RIS rejected the message ({ack.code}){reason}", code=outcome.error_code)
    raise TransientFailure(f"the RIS answered {ack.code}{reason}", code=outcome.error_code)
