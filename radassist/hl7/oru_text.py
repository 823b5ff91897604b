"""Report text laid out as OBX values, by value type.

The text is cut into cleaned lines first (:func:`radassist.hl7.escaping.text_lines`): no control
character of the model's output reaches a message.  TX: one OBX per line.  FT: the lines of a
section joined by ``\\.br\\`` in as few OBX as the OBX-5 limit allows.  A line longer than the
limit continues in the next OBX, cut between words where it can be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from radassist.hl7.escaping import escaped_length, text_lines
from radassist.hl7.oru_fields import OBX_TEXT_MAX

TextType = Literal["TX", "FT"]


def _fits(value: str) -> bool:
    return escaped_length(value) <= OBX_TEXT_MAX


def wrap(line: str, fits: Callable[[str], bool] = _fits) -> list[str]:
    """``line`` in pieces that each fit, cut at spaces, and inside a word only when it is too long."""
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if fits(candidate):
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        for char in word:
            if not fits(current + char):
                pieces.append(current)
                current = ""
            current += char
    if current:
        pieces.append(current)
    return pieces


def _formatted_chunks(lines: list[str]) -> list[str]:
    """Whole lines joined by line breaks while they fit; a wrapped line's pieces start new OBX."""
    chunks: list[str] = []
    current: list[str] = []
    for line in lines:
        for index, piece in enumerate(wrap(line)):
            joined = "\n".join([*current, piece])
            if index == 0 and current and escaped_length(joined, formatted=True) <= OBX_TEXT_MAX:
                current.append(piece)
                continue
            if current:
                chunks.append("\n".join(current))
            current = [piece]
    if current:
        chunks.append("\n".join(current))
    return chunks


def obx_values(text: str, value_type: TextType) -> list[str]:
    """The OBX-5 values (plain text; line breaks as ``\\n`` in FT) of one report section."""
    lines = text_lines(text)
    if value_type == "FT":
        return _formatted_chunks(lines)
    return [piece for line in lines for piece in wrap(line)]
