"""A job's comparison as drafting and the outputs read it: the priors' words, and where their images are.

None for a job whose priors were never searched (no ``[[prior_sources]]``, or a job made before):
its prompt, SR and ORU then say nothing of priors.  Images whose files are gone (retention removed
a prior after the job) are left out; the comparison's words stay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from radassist.db.tables import Instance, JobPrior, PriorSearch
from radassist.priors.comparison import ComparedStudy, Comparison


@dataclass(frozen=True)
class PriorFiles:
    """The stored files of one prior's fetched images, in the order they were fetched."""

    study_instance_uid: str
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class JobComparison:
    comparison: Comparison
    files: tuple[PriorFiles, ...] = ()
    """One per compared study, in the same order (newest first)."""

    @property
    def newest_files(self) -> tuple[Path, ...]:
        return self.files[0].paths if self.files else ()

    @property
    def all_files(self) -> tuple[Path, ...]:
        return tuple(path for prior in self.files for path in prior.paths)


def _files(session: Session, row: JobPrior, instances_dir: Path) -> PriorFiles:
    uids = [str(u) for u in row.sop_instance_uids or ()]
    if row.prior_study_id is None or not uids:
        return PriorFiles(row.study_instance_uid)
    stored = dict(session.execute(
        select(Instance.sop_instance_uid, Instance.path)
        .where(Instance.study_id == row.prior_study_id, Instance.sop_instance_uid.in_(uids))
    ).all())
    paths = [instances_dir / stored[uid] for uid in uids if uid in stored]
    return PriorFiles(row.study_instance_uid, tuple(p for p in paths if p.is_file()))


def job_comparison(session: Session, job_id: uuid.UUID, instances_dir: Path) -> JobComparison | None:
    """The comparison of ``job_id``, or None when its priors were never searched."""
    search = session.get(PriorSearch, job_id)
    if search is None:
        return None
    rows = session.scalars(select(JobPrior).where(JobPrior.job_id == job_id).order_by(JobPrior.rank)).all()
    studies = tuple(
        ComparedStudy(
            study_instance_uid=row.study_instance_uid,
            study_date=row.study_date,
            study_description=row.study_description or "",
            modalities=tuple((row.modalities or "").split()),
            report=row.report_text,
            report_origin=row.report_origin,
        )
        for row in rows
    )
    comparison = Comparison(studies, search.reason_code, search.reason)
    return JobComparison(comparison, tuple(_files(session, row, instances_dir) for row in rows))
