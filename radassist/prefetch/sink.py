"""Fetched priors are kept like received instances: the same store (fsynced, never overwritten) and
the same records (:func:`radassist.intake.record.record_instance`), in a study row marked ``prior``.

The study row is made, in state ``prior``, when the search announces the study and before any of
its images arrive (:meth:`PriorStore.chosen`): images that a C-MOVE sends to our listener then land
in it too.  A study in state ``prior`` is never completed, drafted or answered with an SR, and its
instances never reopen anything.  A prior that is already one of our studies (received and drafted
earlier) keeps its own row and state.  Retention removes a prior's files by the same rules, once no
job in progress compares with it (:mod:`radassist.retention.candidates`).
"""

from __future__ import annotations

import io
import logging
import threading
import uuid

import pydicom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.base import utcnow
from radassist.db.engine import write_turn
from radassist.db.tables import Study
from radassist.errors import RejectedInput
from radassist.identifiers import study_handle
from radassist.intake.header import InstanceHeader, parse_header
from radassist.intake.record import record_instance
from radassist.intake.record_steps import STUDIES, dialect_insert
from radassist.priors import FetchedInstance
from radassist.priors.results import ChosenStudy
from radassist.states import StudyState
from radassist.store.instances import InstanceStore, StoredFile

logger = logging.getLogger(__name__)

FETCHED_BY = "PRIORS"
"""The calling AE title recorded for instances the search fetched itself (C-GET, DICOMweb, REST)."""


def _header(data: bytes) -> InstanceHeader:
    """The intake header of a fetched Part 10 file, with the completeness check a received one gets."""
    meta = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    syntax = str(getattr(meta.file_meta, "TransferSyntaxUID", "") or pydicom.uid.ExplicitVRLittleEndian)
    return parse_header(data, syntax)


class PriorStore:
    """The search's sink and announcer for one job: each prior's study row, then its images."""

    def __init__(self, sessions: sessionmaker[Session], instances: InstanceStore, *, called_ae: str) -> None:
        self._sessions = sessions
        self._instances = instances
        self._called_ae = called_ae
        self._lock = threading.Lock()
        self._ready: dict[str, uuid.UUID] = {}
        self.stored = 0
        self.skipped = 0

    @property
    def study_ids(self) -> dict[str, uuid.UUID]:
        """The study row of each prior announced so far, by Study Instance UID."""
        with self._lock:
            return dict(self._ready)

    def chosen(self, chosen: ChosenStudy) -> None:
        """Make the prior's study row (state ``prior``) unless the study is already known."""
        self._study_row(chosen.study_instance_uid, chosen)

    def _study_row(self, study_uid: str, chosen: ChosenStudy | None = None) -> uuid.UUID:
        with self._lock:
            known = self._ready.get(study_uid)
        if known is not None:
            return known
        now = utcnow()
        with write_turn(self._sessions), self._sessions() as session:
            session.execute(
                dialect_insert(session.get_bind().dialect.name, STUDIES)
                .values(
                    id=uuid.uuid4(), study_instance_uid=study_uid, state=StudyState.PRIOR, instance_count=0,
                    accession_number_hash=chosen.accession_number_hash if chosen else None,
                    modality=(chosen.modalities[0][:16] if chosen and chosen.modalities else None),
                    study_description=(chosen.study_description[:64] or None) if chosen else None,
                    calling_ae_title=FETCHED_BY, called_ae_title=self._called_ae[:16] or None,
                    first_received_at=now, last_received_at=now, completed_at=now,
                )
                .on_conflict_do_nothing(index_elements=[STUDIES.c.study_instance_uid])
            )
            study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == study_uid))
            session.commit()
        assert study_id is not None
        with self._lock:
            self._ready[study_uid] = study_id
        return study_id

    def __call__(self, fetched: FetchedInstance) -> None:
        """Store and record one fetched image; one that intake refuses is skipped, never fatal."""
        try:
            header = _header(fetched.data)
        except Exception as exc:  # noqa: BLE001 -- one unreadable image is skipped, not the search
            self._skip(fetched.study_instance_uid, f"unreadable ({type(exc).__name__})")
            return
        if header.study_instance_uid != fetched.study_instance_uid:
            self._skip(fetched.study_instance_uid, "it names another study")
            return
        self._study_row(header.study_instance_uid)
        stored = self._instances.write(fetched.data, header.study_instance_uid, header.series_instance_uid,
                                       header.sop_instance_uid)
        try:
            with write_turn(self._sessions), self._sessions() as session:
                record_instance(session, header, stored, calling_ae=FETCHED_BY, called_ae=self._called_ae,
                                now=utcnow(), reopen_study=False)
                session.commit()
        except RejectedInput as exc:
            self._undo(stored)
            self._skip(header.study_instance_uid, exc.code)
            return
        except Exception:
            self._undo(stored)
            raise
        with self._lock:
            self.stored += 1

    def _skip(self, study_uid: str, why: str) -> None:
        with self._lock:
            self.skipped += 1
        logger.warning("a fetched image of prior %s was not kept: %s", study_handle(study_uid), why)

    def _undo(self, stored: StoredFile) -> None:
        if stored.replaced:
            return
        try:
            self._instances.remove(stored.relpath)
        except (OSError, ValueError) as exc:
            logger.error("could not remove an unrecorded prior image (%s)", type(exc).__name__)
