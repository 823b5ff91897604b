"""Reading an inbound message from the RIS: its header, its type, its order blocks, its fields.

Values are read from python-hl7's parse tree as raw ER7 and unescaped by
:func:`radassist.hl7.escaping.unescape` under the sender's own separators, so that an escape
sequence is read as the text it stands for (``\\X0D\\`` is a CR) and never reaches a log (the
library's own unescape logs what it cannot read).  A position such as ``OBR-4.2`` names field 4,
component 2 of the block's OBR; :func:`first` reads the first non-empty of several positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import hl7

from radassist.hl7.ack import InboundHeader, delimiters, read_header
from radassist.hl7.escaping import Delimiters, unescape
from radassist.ris.refusals import InboundProblem

ORDER_TYPES = frozenset({("ORM", "O01"), ("OMI", "O23")})
RESULT_TYPES = frozenset({("ORU", "R01")})

#: Every message type we take, and what it gives us (the specification lists this table).
MESSAGE_TYPES: dict[tuple[str, str], str] = {
    ("ORM", "O01"): "an order (HL7 v2.3-v2.5 order message): stored per accession number",
    ("OMI", "O23"): "an imaging order (v2.5+, with IPC): stored per accession number",
    ("ORU", "R01"): "a result: stored when OBR-25 is F (final) or C (corrected), else acknowledged only",
}


#: The MSH fields we read, and what for (the specification lists this table).
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("MSH-1, MSH-2", "the sender's separators: every value is read, and our ACK written, with them"),
    ("MSH-3, MSH-4", "echoed in our ACK's MSH-5, MSH-6"),
    ("MSH-5, MSH-6", "not checked"),
    ("MSH-9", "message type and trigger event (see the table above); echoed in the ACK's MSH-9"),
    ("MSH-10", "message control ID: required; echoed in MSA-2; a result resent with it is stored once"),
    ("MSH-11", "processing ID, echoed in the ACK (default `P`)"),
    ("MSH-12", "version: any `2.x`; the ACK is written in the same version"),
    ("MSH-18", "character set: ISO 8859-1 when it names 8859, else UTF-8 (ISO 8859-1 when not valid UTF-8)"),
)


def decode(payload: bytes) -> str:
    """Bytes from the wire as text: UTF-8, or ISO 8859-1 when MSH-18 says so or UTF-8 fails."""
    head = payload[:512].split(b"\r", 1)[0]
    if b"8859" in head:
        return payload.decode("latin-1")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


@dataclass
class Block:
    """One OBR with the ORC before it and the segments between them and the next ORC/OBR."""

    delimiters: Delimiters
    orc: hl7.Segment | None = None
    obr: hl7.Segment | None = None
    others: list[hl7.Segment] = field(default_factory=list)

    def segment(self, name: str) -> hl7.Segment | None:
        if name == "ORC":
            return self.orc
        if name == "OBR":
            return self.obr
        return next((s for s in self.others if segment_name(s) == name), None)

    def all(self, name: str) -> list[hl7.Segment]:
        return [s for s in self.others if segment_name(s) == name]


@dataclass(frozen=True)
class Inbound:
    """A message that passed the header checks and parses."""

    header: InboundHeader
    message: hl7.Message

    @property
    def is_order(self) -> bool:
        return (self.header.message_type, self.header.trigger_event) in ORDER_TYPES


def segment_name(segment: hl7.Segment) -> str:
    return str(segment[0]).strip().upper()


def _raw(segment: hl7.Segment, number: int, component: int = 1, repetition: int = 1) -> str:
    """One component of one field as raw ER7 (its first subcomponent), or "" when absent."""
    if number >= len(segment):
        return ""
    reps = segment[number]
    if repetition > len(reps):
        return ""
    rep = reps[repetition - 1]
    if isinstance(rep, str):
        return rep if component == 1 else ""
    if component > len(rep):
        return ""
    comp = rep[component - 1]
    if isinstance(comp, str):
        return comp
    return str(comp[0]) if len(comp) else ""


def value(
    segment: hl7.Segment | None, number: int, delimiters: Delimiters, component: int = 1, repetition: int = 1
) -> str:
    """One component of one field, unescaped and stripped; "" when absent."""
    if segment is None:
        return ""
    return unescape(_raw(segment, number, component, repetition), delimiters).strip()


def repetitions(segment: hl7.Segment, number: int) -> int:
    """How many repetitions field ``number`` has (0 when absent)."""
    return len(segment[number]) if number < len(segment) else 0


def _position(path: str) -> tuple[str, int, int]:
    name, _, rest = path.partition("-")
    number, _, component = rest.partition(".")
    return name, int(number), int(component or 1)


def read(block: Block, path: str) -> str:
    """The value at ``path`` (e.g. ``OBR-4.2``) in ``block``."""
    name, number, component = _position(path)
    return value(block.segment(name), number, block.delimiters, component)


def first(block: Block, paths: tuple[str, ...]) -> str:
    """The first non-empty value of ``paths``."""
    return next((v for v in (read(block, p) for p in paths) if v), "")


def blocks(inbound: Inbound) -> Iterator[Block]:
    """ORC/OBR blocks in message order: each OBR with the ORC before it, and the segments between
    that ORC and the next ORC/OBR (TQ1 comes before OBR in OMI^O23, IPC and OBX after it)."""
    marks = delimiters(inbound.header)
    current: Block | None = None
    pending = Block(marks)
    for segment in inbound.message:
        name = segment_name(segment)
        if name == "ORC":
            if current is not None:
                yield current
                current = None
            pending = Block(marks, orc=segment)
        elif name == "OBR":
            if current is not None:
                yield current
            current = Block(marks, orc=pending.orc, obr=segment, others=pending.others)
            pending = Block(marks)
        elif current is not None:
            current.others.append(segment)
        elif pending.orc is not None:
            pending.others.append(segment)
    if current is not None:
        yield current


def read_message(text: str) -> Inbound:
    """Check the header (MSH, MSH-10, v2, a type we take) and parse; raise :class:`InboundProblem`."""
    header = read_header(text)
    if header is None:
        raise InboundProblem("no_msh")
    if not header.control_id:
        raise InboundProblem("no_control_id")
    if not header.version.startswith("2."):
        raise InboundProblem("version")
    kind = (header.message_type, header.trigger_event)
    if kind not in MESSAGE_TYPES:
        label = f"{header.message_type[:3]}^{header.trigger_event[:3]}"
        known = header.message_type in {t for t, _ in MESSAGE_TYPES}
        condition = "unsupported_event" if known else "unsupported_type"
        raise InboundProblem(condition, f"message type {label} is not accepted here")
    try:
        message = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r"))
    except Exception:  # python-hl7 raises several types; the message text must not reach a log
        raise InboundProblem("unparseable") from None
    return Inbound(header, message)
