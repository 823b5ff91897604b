"""Split a model's free text into Findings and Impression, and refuse output that is no report.

Models format headings every way (``FINDINGS:``, ``**Findings**``, ``## Impression``), wrap the
report in chat ("Sure, here is the report:" ... "Let me know if ..."), sometimes omit the
Impression heading, and, when something is broken, emit nothing or one token over and over.  The
SR and the HL7 message need two clean sections, so this is the one place that copes with all that.
"""

from __future__ import annotations

import itertools
import re

from radassist.errors import PermanentFailure

_FINDINGS = r"findings?"
_IMPRESSION = r"impressions?|conclusions?|summary"
# A heading at a line start (colon optional) or after a sentence end (colon required).
_HEADING = re.compile(
    rf"(?im)(?:^[ \t]*(?P<line>{_FINDINGS}|{_IMPRESSION})[ \t]*(?::|$)"
    rf"|(?:(?<=[.!?])|(?<=[.!?][ \t]))[ \t]*(?P<inline>{_FINDINGS}|{_IMPRESSION})[ \t]*:)"
)
_MARKDOWN = re.compile(r"(?m)\*\*|__|^[ \t]*#{1,6}[ \t]*")
_SPECIAL_TOKEN = re.compile(r"<(?:end_of_turn|start_of_turn|eos|bos|pad|\|im_end\||\|endoftext\|)>|</s>")
_LEADING_CHATTER = re.compile(
    r"(?i)^(?:sure|certainly|okay|ok|of course|absolutely|here is|here's|below is|as an ai|i have|i've)\b"
)
_TRAILING_CHATTER = re.compile(
    r"(?i)^(?:please\b|note:|\*?disclaimer|i hope|let me know|feel free|remember\b|important:"
    r"|this (?:report|draft|is an? ai|is not|should)|as an ai|---)"
)
_MIN_WORDS_FOR_REPEAT_CHECK = 8


def _is_degenerate(text: str) -> bool:
    """True for output that repeats one token or a short phrase instead of saying anything."""
    words = text.split()
    if not any(ch.isalpha() for ch in text):
        return True
    if len(words) < _MIN_WORDS_FOR_REPEAT_CHECK:
        # Also catch a single "word" made of one repeated character run, e.g. "........" or "aaaaaaaa".
        return len(words) == 1 and len(words[0]) >= 20 and len(set(words[0])) <= 2
    run = longest = 1
    for previous, current in itertools.pairwise(words):
        run = run + 1 if current == previous else 1
        longest = max(longest, run)
    if longest >= _MIN_WORDS_FOR_REPEAT_CHECK:
        return True
    return len(words) >= 20 and len({w.lower() for w in words}) / len(words) < 0.15


def _clean_block(text: str) -> str:
    """Trim each line and drop blank-line runs; keep line breaks (lists stay lists)."""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _strip_leading_chatter(text: str) -> str:
    lines = text.strip().splitlines()
    while lines and (_LEADING_CHATTER.match(lines[0].strip()) or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


def _strip_trailing_chatter(text: str) -> str:
    lines = text.strip().splitlines()
    for index, line in enumerate(lines):
        if index > 0 and _TRAILING_CHATTER.match(line.strip()):
            return "\n".join(lines[:index])
    return "\n".join(lines)


def _split_without_impression(body: str) -> tuple[str, str]:
    """No Impression heading: the last paragraph, else the last sentence, is the impression."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    if len(paragraphs) > 1:
        return "\n\n".join(paragraphs[:-1]), paragraphs[-1]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", body.strip()) if s.strip()]
    if len(sentences) > 1:
        return " ".join(sentences[:-1]), sentences[-1]
    return body, body


def split_report(text: str) -> tuple[str, str]:
    """Return (findings, impression) from a model's output.

    Raises ``PermanentFailure`` ``model.output_invalid`` for empty or degenerate output.
    """
    if text is None or not text.strip():
        raise PermanentFailure("the model returned no text", code="model.output_invalid")
    cleaned = _SPECIAL_TOKEN.sub(" ", text)
    cleaned = _MARKDOWN.sub("", cleaned).replace("\r\n", "\n")
    if not cleaned.strip() or _is_degenerate(cleaned):
        raise PermanentFailure("the model's output is empty or degenerate", code="model.output_invalid")

    headings = [
        (m.start(), m.end(), (m.group("line") or m.group("inline")).lower())
        for m in _HEADING.finditer(cleaned)
    ]
    findings_at = next((h for h in headings if h[2].startswith("finding")), None)
    impression_at = next((h for h in headings if not h[2].startswith("finding")), None)

    def section(start: int) -> str:
        following = [h[0] for h in headings if h[0] >= start]
        return cleaned[start : min(following, default=len(cleaned))]

    if findings_at and impression_at:
        findings = section(findings_at[1])
        impression = section(impression_at[1])
    elif impression_at:
        findings = _strip_leading_chatter(cleaned[: impression_at[0]])
        impression = section(impression_at[1])
    elif findings_at:
        findings, impression = _split_without_impression(_strip_trailing_chatter(section(findings_at[1])))
    else:
        body = _strip_trailing_chatter(_strip_leading_chatter(cleaned))
        if not body.strip():
            raise PermanentFailure("the model's output holds no report", code="model.output_invalid")
        findings, impression = _split_without_impression(body)

    findings = _clean_block(_strip_trailing_chatter(findings))
    impression = _clean_block(_strip_trailing_chatter(impression))
    if not findings and impression:
        findings = impression  # an impression-only answer: both sections carry it
    if not impression and findings:
        findings, impression = (_clean_block(part) for part in _split_without_impression(findings))
    if not findings or not impression:
        raise PermanentFailure("the model's output holds no report", code="model.output_invalid")
    return findings, impression
