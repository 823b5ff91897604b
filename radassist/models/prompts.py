"""Versioned prompt text.  Bump ``PROMPT_VERSION`` on any change: it is stored with each draft.

The prompt is the profile's instruction (:mod:`radassist.models.profiles`) plus what is known of
the patient and the request -- age, sex, study and series descriptions, the indication from the
headers and, when the RIS sent an order (:class:`radassist.ris.context.OrderContext`), its
indication, requested procedure and priority -- the comparison with the patient's priors (each
prior's date, description and report, or that none is available, :mod:`radassist.priors.comparison`)
and the two headings the SR and the ORU need.  A job whose priors were never searched gets no
comparison lines at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from radassist.config import PromptProfileSettings
from radassist.imaging.context import ClinicalContext
from radassist.priors.comparison import Comparison, quoted_report

if TYPE_CHECKING:
    from radassist.ris.context import OrderContext

PROMPT_VERSION = "3"

MODALITY_NAMES = {
    "CR": "computed radiography",
    "DX": "digital radiography",
    "MG": "mammography",
    "CT": "CT",
    "MR": "MRI",
    "PT": "PET",
    "NM": "nuclear medicine",
    "US": "ultrasound",
    "XA": "angiography",
    "RF": "fluoroscopy",
    "IO": "intra-oral radiography",
    "PX": "panoramic radiography",
}


def _study_line(context: ClinicalContext) -> str:
    kind = MODALITY_NAMES.get(context.modality or "", context.modality or "imaging")
    if context.modality and kind != context.modality:
        kind = f"{kind} ({context.modality})"
    line = f"Study: {kind}"
    if context.body_part:
        line += f" of the {context.body_part}"
    if context.study_description:
        line += f"; description: {context.study_description}"
    if context.series_description:
        line += f"; series shown: {context.series_description}"
    return line + "."


def _patient_line(context: ClinicalContext) -> str | None:
    parts = [p for p in (context.age, context.sex) if p]
    return f"Patient: {', '.join(parts)}." if parts else None


def _comparison_lines(comparison: Comparison | None) -> list[str]:
    if comparison is None:
        return []
    if not comparison.studies:
        return ["Prior studies: none available for comparison; do not compare with earlier studies."]
    lines: list[str] = []
    for study in comparison.studies:
        lines.append(f"Prior study for comparison: {study.title}.")
        report = quoted_report(study.report) if study.report else ""
        lines.append(f"Its report:\n{report}" if report else "Its report is not available.")
    lines.append("Compare with the prior study where relevant.")
    return lines


def _images_line(n_images: int, prior_images: int, prior_first: bool, comparison: Comparison | None) -> str:
    images = "image" if n_images == 1 else f"{n_images} images"
    if prior_images < 1 or comparison is None or comparison.newest is None:
        return f"The {images} above {'is' if n_images == 1 else 'are'} from this study, in reading order."
    prior = "image" if prior_images == 1 else f"{prior_images} images"
    current_part = f"{images} {'is' if n_images == 1 else 'are'} from this study, in reading order"
    prior_part = f"{prior} {'is' if prior_images == 1 else 'are'} from the prior study ({comparison.newest.title})"
    first, last = (prior_part, current_part) if prior_first else (current_part, prior_part)
    return f"Of the images above, the first {first}; the last {last}."


def build_prompt(
    context: ClinicalContext,
    n_images: int,
    *,
    profile: PromptProfileSettings | None = None,
    order: OrderContext | None = None,
    comparison: Comparison | None = None,
    prior_images: int = 0,
) -> str:
    """The instruction that follows the images in the user turn.

    ``n_images`` pictures of this study and ``prior_images`` of the newest prior of ``comparison``
    are shown, in the order of the profile's ``image_order``.
    """
    if n_images < 1:
        raise ValueError("n_images: must be at least 1")
    if prior_images < 0:
        raise ValueError("prior_images: must not be negative")
    prior_first = profile is not None and profile.image_order[0] == "prior"
    lines = [
        "You are an expert radiologist. Draft a preliminary report for a radiologist to review.",
        _study_line(context),
    ]
    if profile is not None and profile.instruction:
        lines.append(profile.instruction)
    patient = _patient_line(context)
    if patient:
        lines.append(patient)
    indication = context.indication or (order.indication if order else None)
    lines.append(f"Indication: {indication}." if indication else "Indication: not given.")
    if order is not None:
        if order.indication and context.indication and order.indication != context.indication:
            lines.append(f"Order indication: {order.indication}.")
        if order.procedure_text:
            lines.append(f"Requested procedure: {order.procedure_text}.")
        if order.priority:
            lines.append(f"Priority: {order.priority}.")
    lines += _comparison_lines(comparison)
    lines += [
        _images_line(n_images, prior_images, prior_first, comparison),
        "Write the report with exactly two headings:",
        "Findings: the observations, in complete sentences.",
        "Impression: the most important conclusions, briefly.",
        "Do not add other headings, greetings, explanations or disclaimers.",
    ]
    return "\n".join(lines)
