"""Checks on what the model wrote, before anything is sent anywhere.

Two kinds.  *Failures* stop the job with a named reason and no SR or ORU: nothing at all, text
cut off by the token limit before an Impression, one token over and over, or bytes that are not
prose.  *Warnings* keep the draft but are stored with it and shown on the worklist: the report
says "left" when every image is of the right side, talks about the brain on a chest film, or
describes a uterus in a male patient.  A warning is a prompt for the radiologist, not a verdict.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from radassist.errors import PermanentFailure
from radassist.models.base import Generation
from radassist.models.postprocess import _is_degenerate  # noqa: PLC2701 -- one definition of "degenerate"

_IMPRESSION_HEADING = re.compile(r"(?im)(?:^|[.!?]\s*|\*\*|#\s*)(?:impressions?|conclusions?|summary)\s*[:*]?")


def check_generation(generation: Generation) -> None:
    """Raise ``PermanentFailure`` with a specific code when the output is not a usable report."""
    text = generation.text or ""
    if not text.strip():
        raise PermanentFailure("the model returned no text", code="model.output_empty")
    if generation.stopped == "time_limit":
        raise PermanentFailure("the model was stopped by the generation time limit", code="model.timeout")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\n\t")
    letters = sum(1 for ch in text if unicodedata.category(ch).startswith("L"))
    replacement = text.count("\ufffd")
    if printable / len(text) < 0.95 or letters / max(1, len(text.strip())) < 0.4 or replacement > 2:
        raise PermanentFailure("the model's output is not text", code="model.output_not_text")
    if _is_degenerate(text):
        raise PermanentFailure("the model repeated itself instead of reporting", code="model.output_repetitive")
    if generation.stopped == "max_new_tokens" and not _IMPRESSION_HEADING.search(text):
        raise PermanentFailure(
            f"the output was cut off at the token limit ({generation.new_tokens} tokens) before an Impression",
            code="model.output_truncated",
        )


# ---- consistency with the headers ------------------------------------------------------------

_SIDE_WORDS = {"R": re.compile(r"(?i)\bright\b"), "L": re.compile(r"(?i)\bleft\b")}
_BILATERAL = re.compile(r"(?i)\b(?:bilateral(?:ly)?|both)\b")
_REGION_TERMS: dict[str, tuple[str, ...]] = {
    "chest": ("lung", "lungs", "pleural", "pneumothorax", "cardiomediastinal", "mediastinum", "mediastinal",
              "hilar", "pulmonary", "cardiac silhouette", "costophrenic"),
    "head": ("brain", "intracranial", "ventricles", "ventricular", "sulci", "cerebral", "cerebellar",
             "midline shift", "gray-white", "grey-white", "extra-axial", "calvarium"),
    "abdomen": ("liver", "spleen", "pancreas", "kidney", "kidneys", "renal", "bowel", "gallbladder",
                "appendix", "ascites", "adrenal"),
    "breast": ("breast", "breasts", "bi-rads", "birads", "mammographic", "fibroglandular", "nipple"),
}
_BODY_PART_REGION = {
    "CHEST": "chest", "THORAX": "chest", "LUNG": "chest",
    "HEAD": "head", "BRAIN": "head", "SKULL": "head",
    "ABDOMEN": "abdomen", "ABD": "abdomen", "PELVIS": "abdomen", "LIVER": "abdomen", "KIDNEY": "abdomen",
    "BREAST": "breast",
}
_SEX_TERMS = {
    "male": ("uterus", "uterine", "ovary", "ovaries", "ovarian", "endometrium", "endometrial", "cervix",
             "pregnancy", "pregnant", "gestational"),
    "female": ("prostate", "prostatic", "testis", "testes", "testicle", "testicular", "scrotum", "scrotal",
               "seminal vesicle", "seminal vesicles"),
}


def _mentions(text: str, terms: Iterable[str]) -> list[str]:
    return [t for t in terms if re.search(rf"(?i)\b{re.escape(t)}\b", text)]


def consistency_warnings(
    text: str, *, lateralities: Iterable[str] = (), body_part: str | None = None, sex: str | None = None
) -> list[str]:
    """Warnings on the report ``text`` against ImageLaterality/Laterality, BodyPartExamined and PatientSex.

    ``sex`` is ``male``/``female`` (as in :class:`ClinicalContext`); ``lateralities`` are ``R``/``L``/``B``.
    """
    warnings: list[str] = []
    sides = {s for s in lateralities if s in ("R", "L")}
    if len(sides) == 1 and "B" not in set(lateralities):
        imaged = next(iter(sides))
        other = "L" if imaged == "R" else "R"
        if _SIDE_WORDS[other].search(text) and not _BILATERAL.search(text):
            warnings.append(
                f"laterality: the report mentions the {'left' if other == 'L' else 'right'} side, but the "
                f"images are labelled {'right' if imaged == 'R' else 'left'} (ImageLaterality/Laterality {imaged})"
            )
    region = None
    for word in (body_part or "").upper().replace("_", " ").split():
        region = _BODY_PART_REGION.get(word, region)
    if region is not None:
        expected = _mentions(text, _REGION_TERMS[region])
        foreign = {r: _mentions(text, terms) for r, terms in _REGION_TERMS.items() if r != region}
        foreign = {r: found for r, found in foreign.items() if found}
        if foreign and not expected:
            found = ", ".join(sorted({t for terms in foreign.values() for t in terms}))
            warnings.append(
                f"body part: the report describes {found}, but BodyPartExamined is {body_part!s} "
                f"and it says nothing about the {region}"
            )
    if sex in _SEX_TERMS:
        found_terms = _mentions(text, _SEX_TERMS[sex])
        if found_terms:
            warnings.append(f"sex: the report mentions {', '.join(found_terms)} but PatientSex is {sex}")
    return warnings
