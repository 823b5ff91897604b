"""Messages as we mean them, written as ER7 and read back before they may leave.

A :class:`Segment` holds plain values (never ER7): field number -> repetitions -> components.
:func:`render` escapes every value (:mod:`radassist.hl7.escaping`) and joins them with the
standard separators; :func:`check_read_back` parses the text with python-hl7, an independent
parser, and refuses a message whose segments or values differ from the :class:`Segment` list it
was rendered from (one more segment, one value cut short, a value that became a separator).
A message that fails is never stored or sent: the error names the position, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hl7

from radassist.errors import PermanentFailure
from radassist.hl7.escaping import STANDARD, escape, is_control

Repetition = tuple[str, ...]
"""The components of one repetition of a field (no subcomponents are written)."""
Canonical = tuple[tuple[tuple[str, ...], ...], ...]
"""A field read back: repetitions -> components -> subcomponents, trailing empties removed."""

SEGMENT_END = "\r"


@dataclass
class Segment:
    """One segment as meant: ``fields[n]`` is field n's repetitions; ``formatted`` fields are FT.

    For MSH, fields 1 and 2 (the separators) are implicit and field numbering follows the
    standard (MSH-3 is ``fields[3]``).
    """

    name: str
    fields: dict[int, list[Repetition]] = field(default_factory=dict)
    formatted: set[int] = field(default_factory=set)

    def set(
        self, number: int, component: int, value: str, repetition: int = 1, *, formatted: bool = False
    ) -> None:
        """Put ``value`` into field ``number``, component ``component`` of repetition ``repetition``."""
        reps = self.fields.setdefault(number, [])
        while len(reps) < repetition:
            reps.append(())
        comps = list(reps[repetition - 1])
        while len(comps) < component:
            comps.append("")
        comps[component - 1] = value
        reps[repetition - 1] = tuple(comps)
        if formatted:
            self.formatted.add(number)


def _trimmed(items: Sequence[str]) -> list[str]:
    out = list(items)
    while out and out[-1] == "":
        out.pop()
    return out


def _render_field(reps: Sequence[Repetition], formatted: bool) -> str:
    sep = STANDARD
    rendered = [sep.component.join(_trimmed([escape(c, formatted=formatted) for c in rep])) for rep in reps]
    return sep.repetition.join(_trimmed(rendered))


def render_segment(segment: Segment) -> str:
    """One segment as ER7 (without its terminator)."""
    sep = STANDARD.field
    last = max(segment.fields, default=0)
    first = 3 if segment.name == "MSH" else 1
    values = [
        _render_field(segment.fields.get(n, []), n in segment.formatted) for n in range(first, last + 1)
    ]
    head = [segment.name, STANDARD.encoding_characters] if segment.name == "MSH" else [segment.name]
    return sep.join(head + _trimmed(values))


def render(segments: Iterable[Segment]) -> str:
    """The message as ER7, each segment ended by a carriage return."""
    return "".join(render_segment(s) + SEGMENT_END for s in segments)


# --- reading back -----------------------------------------------------------------------------

# The escape sequences :func:`escape` writes; any other sequence means the text is not ours.
_OUR_SEQUENCES = re.compile(r"\\(?:[FSTRE]|X(?:[0-9A-F]{2})+|\.br)\\")


def _canonical_intended(reps: Sequence[Repetition], formatted: bool) -> Canonical:
    # python-hl7 reads the \.br\ of an FT value as CR.
    return _trim_canonical([tuple((c.replace("\n", "\r") if formatted else c,) for c in rep) for rep in reps])


def _trim_canonical(reps: list[tuple[tuple[str, ...], ...]]) -> Canonical:
    trimmed = []
    for rep in reps:
        comps = [tuple(_trimmed(c)) for c in rep]
        while comps and comps[-1] == ():
            comps.pop()
        trimmed.append(tuple(comps))
    while trimmed and trimmed[-1] == ():
        trimmed.pop()
    return tuple(trimmed)


def _canonical_parsed(message: hl7.Message, parsed_field: Any) -> Canonical:
    """A python-hl7 field as repetitions -> components -> subcomponents, unescaped by python-hl7."""
    reps: list[tuple[tuple[str, ...], ...]] = []
    items: list[Any] = list(parsed_field) if isinstance(parsed_field, list) else [parsed_field]
    for rep in items:
        if isinstance(rep, str):
            reps.append(((str(message.unescape(rep)),),))
            continue
        comps = []
        for comp in rep:
            subs = [comp] if isinstance(comp, str) else list(comp)
            comps.append(tuple(str(message.unescape(str(s))) for s in subs))
        reps.append(tuple(comps))
    return _trim_canonical(reps)


def _hygiene(er7: str, segments: Sequence[Segment]) -> str | None:
    """Why the raw text itself is unsafe to frame, or None."""
    stray = {c for c in er7 if is_control(c) and c != SEGMENT_END}
    if stray:
        codes = ", ".join(f"0x{ord(c):02X}" for c in sorted(stray))
        return f"the text holds control characters ({codes}) outside the segment ends"
    if er7.count(SEGMENT_END) != len(segments):
        return f"the text holds {er7.count(SEGMENT_END)} segment ends for {len(segments)} segments"
    if _OUR_SEQUENCES.sub("", er7).count(STANDARD.escape) != 1:  # MSH-2 holds the one escape character
        return "the text holds an escape sequence the builder does not write"
    return None


def differences(er7: str, segments: Sequence[Segment]) -> list[str]:
    """Where the text, read back by python-hl7, differs from ``segments`` (positions only, no values)."""
    unsafe = _hygiene(er7, segments)
    if unsafe:
        return [unsafe]
    try:
        message = hl7.parse(er7)
    except Exception as exc:  # python-hl7 raises several types; the text must not reach a message
        return [f"python-hl7 cannot parse it ({type(exc).__name__})"]
    names = [str(s[0]) for s in message]
    meant = [s.name for s in segments]
    if names != meant:
        return [
            f"it reads back as {len(names)} segments ({' '.join(n[:3] for n in names[:12])}), not {len(meant)}"
        ]
    found: list[str] = []
    for index, (parsed, segment) in enumerate(zip(message, segments, strict=True), start=1):
        first = 3 if segment.name == "MSH" else 1
        last = max(len(parsed) - 1, max(segment.fields, default=0))
        for number in range(first, last + 1):
            got = _canonical_parsed(message, parsed[number]) if number < len(parsed) else ()
            want = _canonical_intended(segment.fields.get(number, []), number in segment.formatted)
            if got != want:
                found.append(f"{segment.name}-{number} (segment {index})")
    return found


def check_read_back(er7: str, segments: Sequence[Segment], what: str) -> None:
    """Raise ``PermanentFailure(code="hl7.build.mismatch")`` unless ``er7`` reads back as ``segments``."""
    found = differences(er7, segments)
    if found:
        shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
        raise PermanentFailure(
            f"the {what} built for this study does not read back as it was meant, so it was neither "
            f"stored nor sent: {shown}",
            code="hl7.build.mismatch",
        )
