"""The slices a pair is compared in: who drafted it and of what, in words that name no patient.

A pair is filed under its model and revision, prompt version, prompt profile, modality, calling AE
title, the patient's sex (``F``, ``M``, ``O``) and an age band (``[quality] age_bands``: with the
default edges 18, 40, 60, 80 the bands are ``0-17``, ``18-39``, ``40-59``, ``60-79`` and ``80+``).
Age comes as a DICOM Age String (``064Y``) from a stored study or as the words the prompt context
uses (``64 years``, ``5 months``); anything else has no band.  The same functions serve the live
measurement and ``radassist eval``, so their slices are the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SLICES: tuple[str, ...] = (
    "model_name", "prompt_version", "profile", "modality", "calling_ae_title", "patient_sex", "age_band",
)
"""The slice columns, in the order the Quality page and the evaluation report show them."""

SLICE_TITLES: dict[str, str] = {
    "model_name": "Model",
    "prompt_version": "Prompt version",
    "profile": "Profile",
    "modality": "Modality",
    "calling_ae_title": "Calling AE",
    "patient_sex": "Sex",
    "age_band": "Age band",
}

_DICOM_AGE = re.compile(r"\s*(\d{1,3})\s*([YMWD])\s*")
_WORDS_AGE = re.compile(r"\s*(\d{1,3})\s+(year|month|week|day)s?\s*")
_PER_YEAR = {"Y": 1.0, "M": 12.0, "W": 52.0, "D": 365.0}
_SEX_WORDS = {"male": "M", "female": "F", "other": "O", "m": "M", "f": "F", "o": "O"}


def age_years(value: str | None) -> float | None:
    """The age in years of ``064Y`` / ``5 months`` style values; None when it is neither."""
    if not value:
        return None
    match = _DICOM_AGE.fullmatch(value.upper())
    if match:
        return int(match.group(1)) / _PER_YEAR[match.group(2)]
    match = _WORDS_AGE.fullmatch(value.lower())
    if match:
        return int(match.group(1)) / _PER_YEAR[match.group(2)[0].upper()]
    return None


def band_names(edges: Sequence[int]) -> tuple[str, ...]:
    """Every band of ``edges`` in order (``0-17``, ..., ``80+``)."""
    bounds = [0, *edges]
    names = [f"{low}-{high - 1}" for low, high in zip(bounds, bounds[1:], strict=False)]
    return (*names, f"{bounds[-1]}+")


def age_band(value: str | None, edges: Sequence[int]) -> str | None:
    """The band of ``value`` (see :func:`age_years`) under ``edges``; None when the age is unknown."""
    years = age_years(value)
    if years is None:
        return None
    names = band_names(edges)
    for index, edge in enumerate(edges):
        if years < edge:
            return names[index]
    return names[-1]


def sex_code(value: str | None) -> str | None:
    """``F``, ``M`` or ``O`` from a DICOM PatientSex or the prompt context's word; None otherwise."""
    if not value:
        return None
    return _SEX_WORDS.get(value.strip().lower())
