"""The ACK we answer every inbound message with (original acknowledgment mode).

Built from the inbound MSH as plain ER7 rather than through a parser: an ACK must also go back
for a message no parser accepts (AR), and it echoes only what the sender sent us (its
application, facility, control id, version), swapped into place, under the sender's own
separators.  Our texts are escaped (:func:`radassist.hl7.escaping.escape`); the echoed raw
fields keep their separators but any control character becomes ``\\Xhh\\``, so that no echoed
value can end a segment or the MLLP frame.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum

from radassist.hl7.escaping import Delimiters, cut, escape_controls, is_control
from radassist.hl7.escaping import escape as escape_text

DEFAULT_VERSION = "2.5.1"
_MAX_TEXT = 80  # MSA-3 is ST(80) in v2.5.1


class AckCode(StrEnum):
    """MSA-1 of our answer (HL7 table 0008, original mode)."""

    AA = "AA"
    AE = "AE"
    AR = "AR"


#: What each answer tells the sender (the specification lists this table).
ACK_MEANING: dict[AckCode, str] = {
    AckCode.AA: "accepted: stored and committed before the ACK was written",
    AckCode.AE: "application error: read, but not processed (a required field is missing, the "
    "database failed); the sender may correct or resend it",
    AckCode.AR: "rejected: it cannot be read, or is of a type or version we do not take; resending "
    "the same bytes cannot help",
}


class ErrorCode(StrEnum):
    """HL7 table 0357 (message error condition codes)."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_VERSION = "203"
    INTERNAL = "207"


_ERROR_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.INTERNAL: "Application internal error",
}


@dataclass(frozen=True)
class InboundHeader:
    """The MSH fields an ACK needs, as raw (still escaped) ER7 strings; empty when absent."""

    field_separator: str = "|"
    encoding_characters: str = "^~\\&"
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger_event: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = ""


def read_header(text: str) -> InboundHeader | None:
    """The MSH of ``text`` split by its own separators, or None when it has no usable MSH."""
    first = text.lstrip("\x0b\r\n ").split("\r", 1)[0].split("\n", 1)[0]
    if not first.startswith("MSH") or len(first) < 8:
        return None
    sep = first[3]
    if sep.isalnum() or sep == " " or is_control(sep):
        return None
    fields = first.split(sep)
    encoding = fields[1] if len(fields) > 1 else ""
    if len(encoding) < 2 or sep in encoding or any(c.isalnum() or is_control(c) for c in encoding):
        return None
    component = encoding[0]

    def field(number: int) -> str:
        # fields[0] is "MSH" and MSH-1 is the separator itself, so MSH-n is fields[n - 1].
        return fields[number - 1] if len(fields) >= number else ""

    type_parts = field(9).split(component)
    return InboundHeader(
        field_separator=sep,
        encoding_characters=encoding,
        sending_application=field(3),
        sending_facility=field(4),
        receiving_application=field(5),
        receiving_facility=field(6),
        message_type=type_parts[0].strip().upper(),
        trigger_event=(type_parts[1] if len(type_parts) > 1 else "").strip().upper(),
        control_id=field(10).strip(),
        processing_id=field(11).split(component)[0].strip() or "P",
        version=field(12).split(component)[0].strip(),
    )


def delimiters(header: InboundHeader) -> Delimiters:
    """The sender's separators (standard ones where its MSH-2 is short)."""
    chars = header.encoding_characters[:4]
    chars += "^~\\&"[len(chars) :]
    return Delimiters(header.field_separator, chars[0], chars[1], chars[2], chars[3])


def escape(value: str, header: InboundHeader) -> str:
    """Our ``value`` as ER7 text under the sender's separators."""
    return escape_text(value, delimiters(header))


def _err(header: InboundHeader, version: str, error: ErrorCode, text: str) -> str:
    """ERR-1 (ELD) until v2.4; ERR-3 (code), ERR-4 (severity) and ERR-8 (our text) after."""
    marks = delimiters(header)
    sep, comp, subcomp = marks.field, marks.component, marks.subcomponent
    label = _ERROR_TEXT[error]
    if version.startswith(("2.1", "2.2", "2.3")):
        return f"ERR{sep}{comp}{comp}{comp}{error.value}{subcomp}{label}{subcomp}HL70357"
    fields = ["ERR", "", "", f"{error.value}{comp}{label}{comp}HL70357", "E", "", "", "", escape(text, header)]
    return sep.join(fields)


def build_ack(
    header: InboundHeader | None,
    code: AckCode,
    *,
    error: ErrorCode | None = None,
    text: str = "",
    now: dt.datetime | None = None,
    sending_application: str = "RADASSIST",
    sending_facility: str = "RADASSIST",
) -> str:
    """The ACK for a message whose MSH is ``header`` (None: nothing usable was received).

    ``text`` (why it was not accepted) goes into MSA-3 and, from v2.4 on, ERR-8; it must not
    contain patient data.
    """
    header = header or InboundHeader()
    now = now or dt.datetime.now(dt.UTC)
    version = header.version or DEFAULT_VERSION
    marks = delimiters(header)
    sep, comp = marks.field, marks.component
    # MSH-9.3 (message structure) exists from v2.3.1.
    msg_type = f"ACK{comp}{header.trigger_event}" if header.trigger_event else "ACK"
    if version not in ("2.1", "2.2", "2.3"):
        msg_type += f"{comp}ACK" if header.trigger_event else f"{comp}{comp}ACK"

    def echo(raw: str) -> str:
        return escape_controls(raw, marks)

    msh = [
        "MSH",
        header.encoding_characters,
        escape(sending_application, header),
        escape(sending_facility, header),
        echo(header.sending_application),
        echo(header.sending_facility),
        now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S%z"),
        "",
        echo(msg_type),
        uuid.uuid4().hex[:20],
        echo(header.processing_id),
        echo(version),
    ]
    reason = escape(cut(text, _MAX_TEXT, marks), header) if text else ""
    msa = ["MSA", code.value, echo(header.control_id)] + ([reason] if reason else [])
    segments = [sep.join(msh), sep.join(msa)]
    if error is not None and code is not AckCode.AA:
        segments.append(_err(header, version, error, text))
    return "\r".join(segments) + "\r"
