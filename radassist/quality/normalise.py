"""The one text normalisation every draft/final comparison goes through.

A draft holds Findings and Impression only; a signed final report often also has a title, the
indication, technique, comparison, recommendations and a signature.  Comparing those would charge the
model for text it was never asked to write, so both texts are first cut to their **report body**:

1. Markdown emphasis (``**``, ``__``) and heading marks (``#``) are removed.
2. Section headings are recognised at a line start (colon optional) or after a sentence end (colon
   required): Findings, Impression, Conclusion, Opinion, Summary, Interpretation and Addendum are
   kept; Indication, History, Clinical information, Reason for exam, Technique, Comparison,
   Procedure, Exam/Examination, Study and Recommendation(s) are dropped with their text.
3. Text before the first heading is kept, unless a Findings heading follows (then it is a title).
   A text with no heading at all is kept whole.
4. Signature lines (``Electronically signed by``, ``Dictated by``, ``Signed by``, ``Transcribed by``,
   ``Verified by``, ``Reported by``) are dropped; the heading words themselves are dropped.

The labelers read the report body as it is (case and punctuation carry meaning for sentences).
The text metrics read it **normalised** (:func:`normalise`): Unicode NFKC, lower case, every
character that is not a letter or digit becomes a space, except a ``.`` or ``,`` between two digits
("1.5 cm" stays one number), and runs of spaces become one.
"""

from __future__ import annotations

import re
import unicodedata

_KEEP = r"findings?|impressions?|conclusions?|opinion|summary|interpretation|addendum"
_DROP = (
    r"clinical\s+indications?|indications?|clinical\s+history|history|clinical\s+(?:information|details|data|notes?)"
    r"|reason\s+for\s+(?:exam(?:ination)?|study|request|referral)|techniques?|comparisons?|procedures?"
    r"|exam(?:ination)?|study|recommendations?"
)
_HEADING = re.compile(
    rf"(?im)(?:^[ \t]*(?P<line>{_KEEP}|{_DROP})[ \t]*(?::|$)"
    rf"|(?<=[.!?])[ \t]+(?P<inline>{_KEEP}|{_DROP})[ \t]*:)"
)
_KEEP_RE = re.compile(rf"(?i)^(?:{_KEEP})$")
_FINDINGS_RE = re.compile(r"(?i)^findings?$")
_MARKDOWN = re.compile(r"(?m)\*\*|__|^[ \t]*#{1,6}[ \t]*")
_SIGNATURE = re.compile(
    r"(?im)^[ \t]*(?:electronically\s+)?(?:signed|dictated|transcribed|verified|reported|approved)\s+by\b.*$"
)
_WORD = re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+")


def _tidy(text: str) -> str:
    """Trim each line and drop runs of blank lines."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def report_body(text: str) -> str:
    """The Findings and Impression of ``text`` without headings, signatures or markdown (see the module doc)."""
    text = _SIGNATURE.sub("", _MARKDOWN.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))
    matches = list(_HEADING.finditer(text))
    if not matches:
        return _tidy(text)
    headings = [(m.group("line") or m.group("inline") or "").strip() for m in matches]
    parts: list[str] = []
    if not any(_FINDINGS_RE.match(" ".join(h.split())) for h in headings):
        parts.append(text[: matches[0].start()])
    for index, (match, heading) in enumerate(zip(matches, headings, strict=True)):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        if _KEEP_RE.match(" ".join(heading.split())):
            parts.append(text[match.end() : end])
    return _tidy("\n".join(part.strip() for part in parts if part.strip()))


def draft_report(findings: str, impression: str) -> str:
    """A draft's two sections as one report text, headed as a final report is (what is compared with it)."""
    return f"Findings: {findings.strip()}\nImpression: {impression.strip()}"


def normalise(text: str) -> str:
    """``text``'s report body as lower-case words and numbers separated by single spaces."""
    body = unicodedata.normalize("NFKC", report_body(text)).lower()
    return " ".join(_WORD.findall(body))
