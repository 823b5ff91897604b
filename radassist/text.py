"""DICOM values as one line of text, whatever their multiplicity.

A value that should be single (StudyDescription is LO, VM 1) may still arrive with a backslash,
which pydicom reads as several values.  Every writer (HL7, SR, worklist) shows such a value as one
joined text, never as a Python list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

JOIN = " / "
"""Between the values of a multi-valued element shown as one text (no backslash: it is DICOM's
value delimiter and HL7's escape character)."""


def joined(value: Any, separator: str = JOIN) -> str | None:
    """``value`` as one stripped text: ``None`` or empty stays ``None``; several values are joined."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        parts: Iterable[Any] = (value,)
    elif isinstance(value, Iterable):
        parts = value
    else:
        parts = (value,)
    texts = [(p.decode("latin-1") if isinstance(p, bytes) else str(p)).strip() for p in parts]
    text = separator.join(t for t in texts if t)
    return text or None
