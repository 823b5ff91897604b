"""What the SR and ORU builders read besides the draft: the received headers, the RIS order, the
SRs of the job this one re-drafts, and the comparison with the patient's priors (with the headers
of the priors' stored images, the SR's Pertinent Other Evidence).

Patient identity is read from the received files here, never from the database (which keeps none).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Delivery, Draft, Instance, Job, Study
from radassist.prefetch.read import job_comparison
from radassist.priors.comparison import Comparison
from radassist.ris.context import OrderContext, order_context
from radassist.sr.document import CodedLabel
from radassist.states import DeliveryChannel
from radassist.store.outputs import OutputStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildInputs:
    """Everything an output of one job is built from."""

    sources: list[Dataset]
    """The headers (no pixel data) of the study's received instances: the SR's evidence and patient."""
    order: OrderContext | None
    indication: str | None
    """The headers' indication, else the RIS order's."""
    key_image_uids: list[str] = field(default_factory=list)
    """The instances whose images the model was shown."""
    labels: list[CodedLabel] = field(default_factory=list)
    predecessors: list[Dataset] = field(default_factory=list)
    """The SRs of the job this one re-drafts."""
    comparison: Comparison | None = None
    """The priors compared with, or why none; None when the job's priors were never searched."""
    comparison_sources: list[Dataset] = field(default_factory=list)
    """The headers (no pixel data) of the compared priors' stored images."""


def read_headers(paths: Sequence[Path]) -> list[Dataset]:
    """The source instances' headers (no pixel data)."""
    return [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]


def study_sources(session: Session, study_id: uuid.UUID, instances_dir: Path) -> list[Dataset]:
    """The headers of every received instance of the study, in the order they were received."""
    relpaths = session.scalars(
        select(Instance.path).where(Instance.study_id == study_id).order_by(Instance.received_at)
    ).all()
    return read_headers([instances_dir / p for p in relpaths])


def predecessor_headers(session: Session, job_id: uuid.UUID, outputs: OutputStore) -> list[Dataset]:
    """Headers of the SR files an earlier job produced (read from the output store)."""
    paths = set(
        session.scalars(
            select(Delivery.payload_path).where(Delivery.job_id == job_id, Delivery.channel == DeliveryChannel.SR)
        ).all()
    )
    earlier = session.get(Job, job_id)
    if earlier is not None and earlier.sr_path:
        paths.add(earlier.sr_path)
    headers: dict[str, Dataset] = {}
    for relpath in sorted(p for p in paths if p):
        try:
            ds = pydicom.dcmread(outputs.path(relpath), stop_before_pixels=True)
        except (OSError, InvalidDicomError, ValueError):
            logger.warning("an earlier SR file is missing or unreadable; not referenced as predecessor")
            continue
        headers[str(ds.SOPInstanceUID)] = ds
    return list(headers.values())


def coded_labels(generation: dict[str, Any]) -> list[CodedLabel]:
    """The draft's coded abnormality labels (``{code, scheme, meaning}`` or triples); malformed ones left out."""
    out: list[CodedLabel] = []
    for label in generation.get("labels") or []:
        try:
            if isinstance(label, dict):
                out.append(CodedLabel(str(label["code"]), str(label["scheme"]), str(label["meaning"])))
            else:
                code, scheme, meaning = label
                out.append(CodedLabel(str(code), str(scheme), str(meaning)))
        except (KeyError, TypeError, ValueError):
            logger.warning("a coded label of the draft is malformed; left out of the SR")
    return out


def comparison_inputs(session: Session, job_id: uuid.UUID, instances_dir: Path | None
                      ) -> tuple[Comparison | None, list[Dataset]]:
    """The job's comparison and the headers of its priors' images; a prior file that cannot be read
    is left out of the evidence (the comparison's words stay)."""
    if instances_dir is None:
        return None, []
    found = job_comparison(session, job_id, instances_dir)
    if found is None:
        return None, []
    headers: list[Dataset] = []
    for path in found.all_files:
        try:
            headers.append(pydicom.dcmread(path, stop_before_pixels=True))
        except (OSError, InvalidDicomError, ValueError):
            logger.warning("a prior's stored image could not be read; not referenced as evidence")
    return found.comparison, headers


def gather(session: Session, job: Job, draft: Draft, sources: list[Dataset], outputs: OutputStore,
           instances_dir: Path | None = None) -> BuildInputs:
    """The inputs of ``job``'s outputs, given its study's received headers (and, to find the priors'
    images, the instance store's folder)."""
    generation = dict(draft.generation or {})
    study = session.get(Study, job.study_id)
    order = order_context(session, study.accession_number_hash if study is not None else None)
    indication = generation.get("indication") or (order.indication if order is not None else None)
    previous = job.supersedes_job_id
    comparison, comparison_sources = comparison_inputs(session, job.id, instances_dir)
    return BuildInputs(
        sources=sources,
        order=order,
        indication=indication,
        key_image_uids=[str(u) for u in generation.get("source_sop_instance_uids") or ()],
        labels=coded_labels(generation),
        predecessors=predecessor_headers(session, previous, outputs) if previous is not None else [],
        comparison=comparison,
        comparison_sources=comparison_sources,
    )
