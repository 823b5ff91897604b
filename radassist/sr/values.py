"""Values fitted to their DICOM value representation, and the coded labels the model may report.

Every text that goes into the SR header passes through here: multi-valued elements become one
text (:func:`radassist.text.joined`, never a Python list), LO and SH lose backslashes and control
characters and are cut to their length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from radassist.text import joined

LO_MAX = 64
SH_MAX = 16


def lo(value: Any) -> str:
    """Fit a value into an LO element: one text, at most 64 characters, no backslash or control characters."""
    cleaned = re.sub(r"[\\\x00-\x1f]", " ", joined(value) or "").strip()
    return cleaned[:LO_MAX].rstrip()


def sh(value: Any) -> str:
    """Fit a value into an SH element (16 characters)."""
    return lo(value)[:SH_MAX].rstrip()


def paragraphs(text: str) -> list[str]:
    """One SR TEXT item per non-empty line of the model's output."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class CodedLabel:
    """A coded abnormality the model reported (e.g. SCT 36118008 "Pneumothorax")."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        for name in ("value", "scheme", "meaning"):
            item = getattr(self, name)
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f'Field "{name}" of a coded label must be a non-empty string.')
        if len(self.value) > 64 or len(self.scheme) > 16:
            raise ValueError('A coded label\'s "value" (64) or "scheme" (16) is too long.')
