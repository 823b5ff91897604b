"""Why an inbound message is not accepted, and what we answer: one table, read by the code and by
the interface specification.

AR: the message cannot be read or is of a type or version we do not take (resending the same
bytes cannot help).  AE: it was read but cannot be processed (a required field is missing, the
database failed); the sender may correct or resend it.  Reasons name fields, never values.
"""

from __future__ import annotations

from dataclasses import dataclass

from radassist.hl7.ack import AckCode, ErrorCode


@dataclass(frozen=True)
class InboundRefusal:
    """One condition: our ACK code, the HL7 table 0357 code, our stable code, the default reason."""

    ack: AckCode
    error: ErrorCode
    code: str
    reason: str


REFUSALS: dict[str, InboundRefusal] = {
    "no_msh": InboundRefusal(
        AckCode.AR,
        ErrorCode.SEGMENT_SEQUENCE,
        "hl7.inbound.malformed",
        "the message does not start with an MSH segment",
    ),
    "no_control_id": InboundRefusal(
        AckCode.AR, ErrorCode.REQUIRED_FIELD_MISSING, "hl7.inbound.malformed", "MSH-10 (control id) is empty"
    ),
    "version": InboundRefusal(
        AckCode.AR, ErrorCode.UNSUPPORTED_VERSION, "hl7.inbound.version", "MSH-12 is not an HL7 v2 version"
    ),
    "unsupported_type": InboundRefusal(
        AckCode.AR,
        ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        "hl7.inbound.unsupported",
        "the message type is not accepted here",
    ),
    "unsupported_event": InboundRefusal(
        AckCode.AR,
        ErrorCode.UNSUPPORTED_EVENT,
        "hl7.inbound.unsupported",
        "the trigger event is not accepted here",
    ),
    "unparseable": InboundRefusal(
        AckCode.AR, ErrorCode.DATA_TYPE, "hl7.inbound.malformed", "the message cannot be parsed"
    ),
    "too_large": InboundRefusal(
        AckCode.AR,
        ErrorCode.INTERNAL,
        "hl7.inbound.too_large",
        "message too large (`[hl7] listen_max_message_bytes`); the connection is closed",
    ),
    "no_obr": InboundRefusal(
        AckCode.AE, ErrorCode.SEGMENT_SEQUENCE, "hl7.inbound.no_obr", "the order or result has no OBR segment"
    ),
    "no_accession": InboundRefusal(
        AckCode.AE,
        ErrorCode.REQUIRED_FIELD_MISSING,
        "hl7.inbound.no_accession",
        "no accession number (and, for a result, no known order for its order numbers)",
    ),
    "no_text": InboundRefusal(
        AckCode.AE,
        ErrorCode.REQUIRED_FIELD_MISSING,
        "hl7.inbound.no_text",
        "the final result has no text OBX",
    ),
    "database": InboundRefusal(
        AckCode.AE,
        ErrorCode.INTERNAL,
        "hl7.inbound.db",
        "the message could not be stored; send it again",
    ),
    "internal": InboundRefusal(
        AckCode.AE, ErrorCode.INTERNAL, "hl7.inbound.internal", "the message could not be processed"
    ),
}


class InboundProblem(Exception):
    """A message not accepted: the :data:`REFUSALS` condition and a reason without patient data."""

    def __init__(self, condition: str, reason: str | None = None) -> None:
        self.refusal = REFUSALS[condition]
        self.reason = reason or self.refusal.reason
        super().__init__(self.reason)

    @property
    def ack(self) -> AckCode:
        return self.refusal.ack

    @property
    def error(self) -> ErrorCode:
        return self.refusal.error

    @property
    def code(self) -> str:
        return self.refusal.code
