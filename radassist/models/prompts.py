"""Versioned prompt text.  Bump ``PROMPT_VERSION`` on any change: it is stored with each draft."""

from __future__ import annotations

from radassist.imaging.context import ClinicalContext

PROMPT_VERSION = "1"

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
    return line + "."


def _patient_line(context: ClinicalContext) -> str | None:
    parts = [p for p in (context.age, context.sex) if p]
    return f"Patient: {', '.join(parts)}." if parts else None


def build_prompt(context: ClinicalContext, n_images: int) -> str:
    """The instruction that follows the images in the user turn."""
    if n_images < 1:
        raise ValueError("n_images: must be at least 1")
    images = "image" if n_images == 1 else f"{n_images} images"
    lines = [
        "You are an expert radiologist. Draft a preliminary report for a radiologist to review.",
        _study_line(context),
    ]
    patient = _patient_line(context)
    if patient:
        lines.append(patient)
    lines.append(f"Indication: {context.indication}." if context.indication else "Indication: not given.")
    lines += [
        f"The {images} above {'is' if n_images == 1 else 'are'} from this study, in reading order.",
        "Write the report with exactly two headings:",
        "Findings: the observations, in complete sentences.",
        "Impression: the most important conclusions, briefly.",
        "Do not add other headings, greetings, explanations or disclaimers.",
    ]
    return "\n".join(lines)
