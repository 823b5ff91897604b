"""Which storage SOP classes carry images to draft from, and which do not (SR, PR, KO, PDF...).

Non-image objects are stored like any other instance, but they neither start nor re-start
drafting unless the pipeline asks for it: a study holding only a KO or a PDF gets no job, and
our own SR coming back from the PACS cannot set off a re-draft loop.
"""

from __future__ import annotations

_STORAGE = "1.2.840.10008.5.1.4.1.1."

#: UID prefixes of non-image storage SOP classes (PS3.4 Annex B.5 / PS3.6 Annex A).
NON_IMAGE_PREFIXES: tuple[str, ...] = (
    _STORAGE + "88.",  # structured reports, key object selection (88.59), CAD SR...
    _STORAGE + "11.",  # presentation states
    _STORAGE + "104.",  # encapsulated PDF, CDA, STL, OBJ, MTL
    _STORAGE + "9.",  # waveforms (ECG, audio...)
    _STORAGE + "66",  # raw data, registrations, fiducials, segmentation, surfaces
    _STORAGE + "67",  # real world value mapping
    _STORAGE + "68.",  # surface scan mesh / point cloud
    _STORAGE + "90.",  # content assessment results
    _STORAGE + "200.",  # protocol storage
    _STORAGE + "481.2",  # RT dose and the other RT objects (RT Image is 481.1)
    _STORAGE + "481.3",
    _STORAGE + "481.4",
    _STORAGE + "481.5",
    _STORAGE + "481.6",
    _STORAGE + "481.7",
    _STORAGE + "481.8",
    _STORAGE + "481.9",
    "1.2.840.10008.5.1.4.34.",  # RT second generation
    "1.2.840.10008.5.1.4.38.",  # hanging protocols
    "1.2.840.10008.5.1.4.39.",  # color palettes
    "1.2.840.10008.5.1.4.43.",  # generic implant templates
    "1.2.840.10008.5.1.4.44.",
    "1.2.840.10008.5.1.4.45.",
)


def is_image_sop_class(sop_class_uid: str) -> bool:
    """True for SOP classes whose instances hold pixel data a model can look at."""
    return not sop_class_uid.startswith(NON_IMAGE_PREFIXES)


def is_report_sop_class(sop_class_uid: str) -> bool:
    """True for structured reports (our own drafts come back as these)."""
    return sop_class_uid.startswith(_STORAGE + "88.")
