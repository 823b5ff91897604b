"""HL7 v2 escaping (section 2.7): every value written into a message stays a value.

Outgoing values (DICOM header values, RIS order fields, model text, config) pass through
:func:`escape`, which keeps three rules:

* the five encoding characters (field, component, repetition, escape, subcomponent separators)
  become ``\\F\\ \\S\\ \\R\\ \\E\\ \\T\\`` under the message's own encoding characters;
* in formatted text (FT) a line break becomes ``\\.br\\``;
* every other control character, C0 (0x00-0x1F: CR, LF, VT, FS among them) and DEL, becomes a
  hex sequence ``\\Xhh\\``, so that no value can end a segment or an MLLP frame; the C1 controls
  (U+0080-U+009F) and unpaired surrogates are dropped, as they have no one-byte form in UTF-8.

Report text is cleaned first by :func:`text_lines`: it is cut into lines at every line boundary
Python knows (CR, LF, CRLF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029), other control characters
are dropped and runs of blanks become one space; the builder then puts the lines into OBX segments
by their value type.

Incoming values are read back with :func:`unescape`, the inverse of :func:`escape`, which also
reads multi-byte hex (UTF-8), drops highlighting and character-set switches, and never logs the
value (python-hl7's own unescape logs the field it cannot read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The order in which the four encoding characters appear in MSH-2.
ENCODING_ORDER = ("component", "repetition", "escape", "subcomponent")


@dataclass(frozen=True)
class Delimiters:
    """A message's separators (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def encoding_characters(self) -> str:
        """MSH-2."""
        return self.component + self.repetition + self.escape + self.subcomponent

    def names(self) -> dict[str, str]:
        """Each separator and the letter of its escape sequence."""
        return {
            self.field: "F",
            self.component: "S",
            self.subcomponent: "T",
            self.repetition: "R",
            self.escape: "E",
        }


STANDARD = Delimiters()

#: What each escape sequence we write stands for (the specification lists this table).
ESCAPE_SEQUENCES: tuple[tuple[str, str], ...] = (
    ("\\F\\", "field separator `|`"),
    ("\\S\\", "component separator `^`"),
    ("\\R\\", "repetition separator `~`"),
    ("\\E\\", "escape character `\\`"),
    ("\\T\\", "subcomponent separator `&`"),
    ("\\.br\\", "line break, in FT values only"),
    ("\\Xhh\\", "a control character (C0 or DEL) by its code, e.g. `\\X0D\\` for CR, in other values"),
)


def is_control(char: str) -> bool:
    """C0, DEL or C1: a character that is never text."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _dropped(char: str) -> bool:
    code = ord(char)
    return 0x80 <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def _escape_char(char: str, names: dict[str, str], esc: str, formatted: bool) -> str:
    if char in names:
        return f"{esc}{names[char]}{esc}"
    if formatted and char == "\n":
        return f"{esc}.br{esc}"
    if _dropped(char):
        return ""
    if is_control(char):
        return f"{esc}X{ord(char):02X}{esc}"
    return char


def _formatted_breaks(value: str) -> str:
    """CRLF, CR and LF as one ``\\n`` each (CRLF is one break, not two)."""
    return re.sub(r"\r\n?", "\n", value)


def escape(value: str, delimiters: Delimiters = STANDARD, *, formatted: bool = False) -> str:
    """``value`` as ER7 text that a parser reads back as exactly ``value`` (see the module rules).

    ``formatted``: the value is FT, so line breaks become ``\\.br\\`` instead of hex sequences.
    """
    if formatted:
        value = _formatted_breaks(value)
    names = delimiters.names()
    return "".join(_escape_char(c, names, delimiters.escape, formatted) for c in value)


def writable(value: str) -> str:
    """``value`` without the characters :func:`escape` drops: what a parser will read back."""
    return "".join(c for c in value if not _dropped(c))


def escape_controls(raw: str, delimiters: Delimiters = STANDARD) -> str:
    """Raw ER7 text echoed from a sender, its control characters as ``\\Xhh\\`` (separators kept)."""
    esc = delimiters.escape
    return "".join("" if _dropped(c) else f"{esc}X{ord(c):02X}{esc}" if is_control(c) else c for c in raw)


def escaped_length(value: str, delimiters: Delimiters = STANDARD, *, formatted: bool = False) -> int:
    """The length of ``escape(value)``: what HL7 length limits count."""
    return len(escape(value, delimiters, formatted=formatted))


def cut(value: str, limit: int, delimiters: Delimiters = STANDARD, *, formatted: bool = False) -> str:
    """The longest prefix of ``value`` whose escaped form fits ``limit`` characters (never half a sequence)."""
    if formatted:
        value = _formatted_breaks(value)
    names = delimiters.names()
    length = 0
    for index, char in enumerate(value):
        length += len(_escape_char(char, names, delimiters.escape, formatted))
        if length > limit:
            return value[:index]
    return value


def clean_line(line: str) -> str:
    """One line of report text: control characters dropped, blanks (tabs too) collapsed to one space."""
    kept = "".join(c for c in line if c == "\t" or not (is_control(c) or _dropped(c)))
    return " ".join(kept.split())


def text_lines(text: str) -> list[str]:
    """Report text as its non-empty lines, each cleaned by :func:`clean_line`."""
    return [line for line in (clean_line(raw) for raw in text.splitlines()) if line]


_FORMATTING_BREAKS = (".br", ".sp", ".ce")


def _sequence(body: str, delimiters: Delimiters) -> str:
    """What one escape sequence (without its escape characters) stands for in an incoming value."""
    letters = {v: k for k, v in delimiters.names().items()}
    if body in letters:
        return letters[body]
    if body[:1] == "X" and re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", body[1:]):
        data = bytes.fromhex(body[1:])
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    if body.startswith(_FORMATTING_BREAKS):
        return "\n"
    # Highlighting (H, N), other formatting (.fi, .nf, .in, .ti, .sk), character-set switches
    # (C, M), locally defined (Z) and unknown sequences carry no text.
    return ""


def unescape(value: str, delimiters: Delimiters = STANDARD) -> str:
    """An incoming ER7 value as text; an escape character without its closing partner stays literal."""
    esc = delimiters.escape
    if esc not in value:
        return value
    out: list[str] = []
    index = 0
    while index < len(value):
        start = value.find(esc, index)
        if start == -1:
            out.append(value[index:])
            break
        end = value.find(esc, start + 1)
        if end == -1:
            out.append(value[index:])
            break
        out.append(value[index:start])
        out.append(_sequence(value[start + 1 : end], delimiters))
        index = end + 1
    return "".join(out)
