"""The words the checks look for, and which body regions each kind of study may mention: one table.

A region is named by the words that describe what lies in it (``lungs``, ``pneumothorax`` for the
chest).  What a study may mention comes, most specific first, from its prompt profile
(:data:`PROFILE_REGIONS`), then its BodyPartExamined and descriptions (:data:`BODY_PART_REGIONS`),
then its modality (:data:`MODALITY_REGIONS`), so a mammogram, a head CT or a brain MR without
BodyPartExamined is still checked.  ``expected``: what the report should talk about; ``allowed``:
what it may also mention without being about another study (a chest film shows the upper abdomen).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REGION_TERMS: dict[str, tuple[str, ...]] = {
    "chest": ("lung", "lungs", "pleural", "pleura", "pneumothorax", "cardiomediastinal", "mediastinum",
              "mediastinal", "hilar", "pulmonary", "cardiac silhouette", "costophrenic", "airspace",
              "bronchial"),
    "head": ("brain", "intracranial", "ventricles", "ventricular", "sulci", "cerebral", "cerebellar",
             "midline shift", "gray-white", "grey-white", "extra-axial", "calvarium", "parenchymal signal",
             "basal ganglia", "white matter"),
    "abdomen": ("liver", "spleen", "pancreas", "kidney", "kidneys", "renal", "bowel", "gallbladder",
                "appendix", "ascites", "adrenal", "hepatic", "splenic"),
    "pelvis": ("bladder", "uterus", "ovary", "ovaries", "prostate", "rectum", "sigmoid"),
    "breast": ("breast", "breasts", "bi-rads", "birads", "mammographic", "fibroglandular", "nipple",
               "axilla", "axillary", "retroareolar"),
    "extremity": ("tibia", "fibula", "femur", "femoral shaft", "humerus", "ulna", "metacarpal",
                  "metatarsal", "phalanx", "phalanges", "patella", "calcaneus", "ankle joint", "knee joint",
                  "wrist", "elbow joint"),
}


@dataclass(frozen=True)
class Regions:
    """What a kind of study is about (``expected``) and may also mention (``allowed``, a superset)."""

    expected: frozenset[str]
    allowed: frozenset[str]


def _r(expected: Iterable[str], also: Iterable[str] = ()) -> Regions:
    wanted = frozenset(expected)
    return Regions(wanted, wanted | frozenset(also))


REGION_DEFAULTS: dict[str, Regions] = {
    "chest": _r({"chest"}, {"abdomen", "breast", "extremity"}),
    "head": _r({"head"}),
    "abdomen": _r({"abdomen", "pelvis"}, {"chest", "extremity"}),
    "pelvis": _r({"pelvis", "abdomen"}, {"extremity"}),
    "breast": _r({"breast"}),
    "extremity": _r({"extremity"}),
}
"""A region's own table: a chest study may mention the upper abdomen and the humeri, an abdomen the
lung bases and the femora."""

PROFILE_REGIONS: dict[str, Regions] = {
    "cxr": REGION_DEFAULTS["chest"],
    "mammography": REGION_DEFAULTS["breast"],
    "ct_head": REGION_DEFAULTS["head"],
    "ct_chest": REGION_DEFAULTS["chest"],
    "ct_abdomen": REGION_DEFAULTS["abdomen"],
    "mr_brain": REGION_DEFAULTS["head"],
}
"""The built-in prompt profiles (:mod:`radassist.models.profiles`) that name one region; ``ct`` and
``general`` serve any region and fall through to the body part and modality."""

BODY_PART_REGIONS: dict[str, str] = {
    "CHEST": "chest", "THORAX": "chest", "LUNG": "chest", "CXR": "chest", "PULMONARY": "chest",
    "HEAD": "head", "BRAIN": "head", "SKULL": "head", "CRANIUM": "head", "NEURO": "head",
    "ABDOMEN": "abdomen", "ABD": "abdomen", "LIVER": "abdomen", "KIDNEY": "abdomen", "RENAL": "abdomen",
    "PELVIS": "pelvis",
    "BREAST": "breast", "MAMMO": "breast", "MAMMOGRAM": "breast", "MAMMOGRAPHY": "breast",
    "EXTREMITY": "extremity", "KNEE": "extremity", "ANKLE": "extremity", "TIBIA": "extremity",
    "FEMUR": "extremity", "HAND": "extremity", "FOOT": "extremity", "WRIST": "extremity",
    "ELBOW": "extremity", "HUMERUS": "extremity", "FOREARM": "extremity", "LEG": "extremity",
}
"""Words of BodyPartExamined and the study/series descriptions, and the region each names."""

MODALITY_REGIONS: dict[str, str] = {"MG": "breast"}
"""Modalities that image one region whatever the header says."""

SEX_TERMS: dict[str, tuple[str, ...]] = {
    "male": ("uterus", "uterine", "ovary", "ovaries", "ovarian", "endometrium", "endometrial", "cervix",
             "pregnancy", "pregnant", "gestational"),
    "female": ("prostate", "prostatic", "testis", "testes", "testicle", "testicular", "scrotum", "scrotal",
               "seminal vesicle", "seminal vesicles"),
}
"""Organs (and states) the patient's recorded sex does not have."""

SIDE_WORDS: dict[str, re.Pattern[str]] = {"R": re.compile(r"(?i)\bright\b"), "L": re.compile(r"(?i)\bleft\b")}
SIDE_NAMES = {"R": "right", "L": "left"}
BILATERAL = re.compile(r"(?i)\b(?:bilateral(?:ly)?|both)\b")


def mentions(text: str, terms: Iterable[str]) -> list[str]:
    """The ``terms`` found in ``text`` as whole words, case-insensitively, in table order."""
    return [t for t in terms if re.search(rf"(?i)\b{re.escape(t)}\b", text)]


def words(*values: str | None) -> list[str]:
    """Upper-case words of header values (``_``, ``/``, ``-`` and ``^`` separate words)."""
    out: list[str] = []
    for value in values:
        if value:
            out += re.sub(r"[_/^\-]", " ", value.upper()).split()
    return out


def study_regions(profile: str | None, body_part: str | None, modality: str | None,
                  descriptions: Iterable[str | None] = ()) -> tuple[Regions, str] | None:
    """What the study may mention and what that was judged from; None when nothing tells."""
    if profile in PROFILE_REGIONS:
        return PROFILE_REGIONS[profile], f"the {profile} prompt profile"
    for source, values in (("BodyPartExamined", [body_part]), ("the study description", list(descriptions))):
        for word in words(*values):
            if word in BODY_PART_REGIONS:
                return REGION_DEFAULTS[BODY_PART_REGIONS[word]], f"{source} ({word})"
    region = MODALITY_REGIONS.get((modality or "").upper())
    if region is not None:
        return REGION_DEFAULTS[region], f"the modality ({(modality or '').upper()})"
    return None
