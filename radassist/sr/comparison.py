"""The SR's comparison: which earlier studies of the patient the draft compared with, or why none.

A "Prior Procedure Descriptions" section (LOINC 55114-3, CID 7001) placed before the Findings, with
one "Procedure Description" (CID 7002) per prior in the words of :meth:`Comparison.lines`, each
followed by the prior's Study Instance UID; without a prior, one item saying why.  The prior's
instances themselves are the SR's Pertinent Other Evidence (:func:`radassist.sr.document.build_draft_sr`).
Only TEXT and UIDREF items, so the section suits the Basic Text SR too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import highdicom as hd
import pydicom

from radassist.priors.comparison import Comparison
from radassist.sr import codes
from radassist.sr.header import REQUIRED_SOURCE_KEYWORDS

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS


def _valid_uid(uid: str) -> bool:
    return len(uid) <= 64 and _UID.fullmatch(uid) is not None


def comparison_section(comparison: Comparison) -> hd.sr.ContainerContentItem:
    """The comparison section of ``comparison``."""
    if not isinstance(comparison, Comparison):
        raise TypeError('Argument "comparison" must be a Comparison.')
    items: list[hd.sr.ContentItem] = []
    lines = comparison.lines()
    if comparison.studies:
        for study, line in zip(comparison.studies, lines, strict=True):
            items.append(hd.sr.TextContentItem(name=codes.PROCEDURE_DESCRIPTION, value=line, relationship_type=_CONTAINS))
            if _valid_uid(study.study_instance_uid):
                items.append(hd.sr.UIDRefContentItem(name=codes.STUDY_INSTANCE_UID, value=study.study_instance_uid,
                                                     relationship_type=_CONTAINS))
    else:
        items.append(hd.sr.TextContentItem(name=codes.PROCEDURE_DESCRIPTION, value=lines[0], relationship_type=_CONTAINS))
    section = hd.sr.ContainerContentItem(name=codes.PRIOR_PROCEDURE_DESCRIPTIONS, relationship_type=_CONTAINS)
    section.ContentSequence = hd.sr.ContentSequence(items)
    return section


def prior_evidence(comparison: Comparison | None, headers: Sequence[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The headers of the compared priors' instances that can be SR evidence: of a compared study,
    with the UIDs evidence needs; each once."""
    if comparison is None or not headers:
        return []
    wanted = {s.study_instance_uid for s in comparison.studies}
    seen: set[str] = set()
    out: list[pydicom.Dataset] = []
    for ds in headers:
        if not isinstance(ds, pydicom.Dataset) or any(not ds.get(kw) for kw in REQUIRED_SOURCE_KEYWORDS):
            continue
        uid = str(ds.SOPInstanceUID)
        if str(ds.StudyInstanceUID) in wanted and uid not in seen:
            seen.add(uid)
            out.append(ds)
    return out
