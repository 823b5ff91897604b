"""One job's search for priors, from its stored study to a :class:`~radassist.priors.PriorsResult`.

It never raises: whatever goes wrong (an unreadable current study, a bug) becomes a result that
says why there is no prior, and the job goes on to drafting without one.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import pydicom
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.db.tables import Instance
from radassist.prefetch.current import read_current
from radassist.prefetch.record import StartedSearch
from radassist.prefetch.sink import PriorStore
from radassist.priors import DatabaseReportBook, PriorsResult, PriorStudy, priors_for
from radassist.priors.reports import choose_sr_report
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOutcome:
    result: PriorsResult
    profile: str | None
    study_ids: Mapping[str, uuid.UUID]
    """The study row of each prior whose images were (or were to be) stored, by Study Instance UID."""


def _moved_report(sessions: sessionmaker[Session], settings: Settings, prior: PriorStudy,
                  reports: DatabaseReportBook) -> PriorStudy:
    """A C-MOVE prior's verified SR report, read from our store where the move delivered it."""
    if prior.report is not None or not prior.unread_report_uids:
        return prior
    with sessions() as session:
        paths = session.scalars(
            select(Instance.path).where(Instance.sop_instance_uid.in_(list(prior.unread_report_uids)))
        ).all()
    datasets = []
    for relpath in paths:
        try:
            datasets.append(pydicom.dcmread(settings.storage.instances_dir / relpath))
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            logger.warning("a moved SR of a prior could not be read (%s)", type(exc).__name__)
    report = choose_sr_report(datasets, reports.our_sr_uids(prior.unread_report_uids))
    return dataclasses.replace(prior, report=report) if report is not None else prior


def _search(settings: Settings, sessions: sessionmaker[Session], started: StartedSearch) -> SearchOutcome:
    with sessions() as session:
        current = read_current(session, started.study_id, settings.storage.instances_dir, settings.model)
    if current is None:
        return SearchOutcome(PriorsResult.unavailable("priors.unreadable"), None, {})
    store = PriorStore(sessions, InstanceStore(settings.storage.instances_dir), called_ae=started.called_ae_title)
    reports = DatabaseReportBook(sessions)
    result = priors_for(settings, current.study, profile=current.profile, sink=store, reports=reports,
                        on_chosen=store.chosen)
    priors = tuple(_moved_report(sessions, settings, p, reports) if p.delivery == "moved" else p
                   for p in result.priors)
    if store.skipped:
        logger.warning("%d fetched prior image(s) were not kept", store.skipped)
    return SearchOutcome(dataclasses.replace(result, priors=priors), current.profile, store.study_ids)


def search_priors(settings: Settings, sessions: sessionmaker[Session], started: StartedSearch) -> SearchOutcome:
    """Find, fetch and store the priors of ``started``'s study; the outcome, never an exception."""
    try:
        return _search(settings, sessions, started)
    except Exception as exc:  # noqa: BLE001 -- a bug here must not cost the draft; no traceback (datasets)
        logger.error("the search for priors failed unexpectedly (%s); drafting goes on without", type(exc).__name__)
        return SearchOutcome(PriorsResult.unavailable("priors.failed"), None, {})
