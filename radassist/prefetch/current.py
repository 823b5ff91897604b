"""Who and what the current study is, as the search needs it: read from its stored files, once.

The patient's ID and issuer, the study date and body part come from an image instance's header
(the database keeps no patient identity); the modalities from every image series; the prompt
profile, whose ``[[priors.rules]]`` rule says which priors are relevant, is chosen from the
headers as drafting will choose it (:func:`radassist.models.profiles.select_profile`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from radassist.config import ModelSettings
from radassist.db.tables import Instance, Series
from radassist.imaging.context import NON_IMAGE_MODALITIES, clinical_context
from radassist.models.profiles import select_profile
from radassist.priors import CurrentStudy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentForSearch:
    """The current study in plain values, and the prompt profile that picks the rule."""

    study: CurrentStudy
    profile: str


def _first_of_each_series(session: Session, study_id: uuid.UUID) -> list[tuple[str | None, str]]:
    """(modality, stored path) of the first-received instance of each series of the study."""
    first = (
        select(Instance.series_id, func.min(Instance.received_at).label("first_at"))
        .where(Instance.study_id == study_id)
        .group_by(Instance.series_id)
        .subquery()
    )
    rows = session.execute(
        select(Series.modality, func.min(Instance.path))
        .join(Instance, Instance.series_id == Series.id)
        .join(first, (first.c.series_id == Instance.series_id) & (first.c.first_at == Instance.received_at))
        .where(Series.study_id == study_id)
        .group_by(Series.id, Series.modality)
        .order_by(Series.series_number)
    ).all()
    return [(modality, path) for modality, path in rows]


def _header(path: Path) -> pydicom.Dataset | None:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        logger.warning("a stored header of the current study could not be read (%s)", type(exc).__name__)
        return None


def read_current(
    session: Session, study_id: uuid.UUID, instances_dir: Path, model: ModelSettings
) -> CurrentForSearch | None:
    """The current study for the search; None when none of its image headers can be read."""
    headers: list[pydicom.Dataset] = []
    modalities: list[str] = []
    for modality, relpath in _first_of_each_series(session, study_id):
        kind = (modality or "").upper()
        if kind in NON_IMAGE_MODALITIES:
            continue
        header = _header(instances_dir / relpath)
        if header is None:
            continue
        headers.append(header)
        if kind and kind not in modalities:
            modalities.append(kind)
    if not headers:
        return None
    profile = select_profile(clinical_context(headers), model.profiles)
    return CurrentForSearch(CurrentStudy.from_dataset(headers[0], modalities=tuple(modalities)), profile.name)
