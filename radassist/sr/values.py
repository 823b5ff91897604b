"""Values fitted to their DICOM value representation (and :class:`CodedLabel`, re-exported for the SR).

Every text that goes into the SR header passes through here: multi-valued elements become one
text (:func:`radassist.text.joined`, never a Python list), LO and SH lose backslashes and control
characters and are cut to their length.
"""

from __future__ import annotations

import re
from typing import Any

from radassist.coded import CodedLabel
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


__all__ = ["LO_MAX", "SH_MAX", "CodedLabel", "lo", "paragraphs", "sh"]
