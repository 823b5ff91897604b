"""One source, searched for one study's priors: find, choose, fetch, and find each prior's report.

Studies come newest first (:mod:`radassist.priors.rules`); each relevant one that has images to
fetch becomes a :class:`~radassist.priors.results.PriorStudy`, recorded in :class:`Progress` as
soon as it is complete, so a search cut short by its time limit still gives what it finished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import pydicom

from radassist.config.priors import PriorRule
from radassist.identifiers import accession_hash
from radassist.priors.answers import InstanceAnswer, SeriesAnswer, StudyAnswer
from radassist.priors.reports import ReportBook, choose_sr_report
from radassist.priors.results import ChosenStudy, CurrentStudy, PriorReport, PriorSourceError, PriorStudy
from radassist.priors.rules import (
    chosen_instances,
    relevant_series,
    relevant_studies,
    report_series,
    study_query,
)
from radassist.priors.sources import PriorSourceClient, Sink

Announce = Callable[[ChosenStudy], None]

logger = logging.getLogger(__name__)

#: Most SR objects of one prior study read in search of its report (dose reports are SRs too).
MAX_REPORT_SRS = 10


class Progress:
    """The priors completed so far; written by the search thread, read by the caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._priors: list[PriorStudy] = []

    def add(self, prior: PriorStudy) -> None:
        with self._lock:
            self._priors.append(prior)

    def snapshot(self) -> tuple[PriorStudy, ...]:
        with self._lock:
            return tuple(self._priors)


def _pick_images(
    client: PriorSourceClient, rule: PriorRule, study: StudyAnswer, series: Sequence[SeriesAnswer], limit: int
) -> list[tuple[SeriesAnswer, list[InstanceAnswer]]]:
    picked: list[tuple[SeriesAnswer, list[InstanceAnswer]]] = []
    left = limit
    for one in series:
        if left <= 0:
            break
        chosen = chosen_instances(rule, client.find_instances(study, one, views=bool(rule.views)))[:left]
        if chosen:
            picked.append((one, chosen))
            left -= len(chosen)
    return picked


def _fetch_images(
    client: PriorSourceClient, study: StudyAnswer, picked: Sequence[tuple[SeriesAnswer, list[InstanceAnswer]]],
    sink: Sink,
) -> tuple[str, ...]:
    uids: list[str] = []
    for series, instances in picked:
        uids += client.retrieve(study, series, instances, sink)
    if not uids:
        raise PriorSourceError(f"prior source {client.name} delivered none of the images", code="priors.retrieve_failed")
    return tuple(uids)


def _sr_report(
    client: PriorSourceClient, study: StudyAnswer, series: Sequence[SeriesAnswer], reports: ReportBook | None,
    sink: Sink | None,
) -> tuple[PriorReport | None, tuple[str, ...]]:
    """A verified SR's report (read here), or the SRs moved for the caller to read (C-MOVE)."""
    datasets: list[pydicom.Dataset] = []
    moved: list[str] = []
    ours: frozenset[str] = frozenset()
    budget = MAX_REPORT_SRS
    for one in report_series(series):
        instances = client.find_instances(study, one)
        ours = ours | (reports.our_sr_uids([i.sop_instance_uid for i in instances]) if reports else frozenset())
        candidates = [i for i in instances if i.sop_instance_uid and i.sop_instance_uid not in ours][:budget]
        if not candidates:
            continue
        budget -= len(candidates)
        if client.moves:
            if sink is not None:
                moved += client.retrieve(study, one, candidates, sink)
        else:
            datasets += client.read(study, one, candidates)
        if budget <= 0:
            break
    return choose_sr_report(datasets, ours), tuple(moved)


def _report(
    client: PriorSourceClient, study: StudyAnswer, series: Sequence[SeriesAnswer], reports: ReportBook | None,
    sink: Sink | None,
) -> tuple[PriorReport | None, tuple[str, ...]]:
    """The RIS's signed report for the prior's accession, else a verified SR of the prior study."""
    if reports is not None and study.accession_number:
        signed = reports.final_report(study.accession_number)
        if signed is not None:
            return signed, ()
    try:
        return _sr_report(client, study, series, reports, sink)
    except PriorSourceError as exc:
        if exc.code == "priors.timeout":
            raise
        logger.warning("prior source %s: the report of a prior could not be read (%s)", client.name, exc.code)
        return None, ()


def _chosen(study: StudyAnswer, picked: Sequence[tuple[SeriesAnswer, list[InstanceAnswer]]]) -> ChosenStudy:
    return ChosenStudy(
        study_instance_uid=study.study_instance_uid,
        study_date=study.study_date,
        study_description=study.study_description,
        accession_number_hash=accession_hash(study.accession_number),
        modalities=study.modalities or tuple(sorted({s.modality for s, _ in picked})),
    )


def search_source(
    client: PriorSourceClient, current: CurrentStudy, rule: PriorRule, *, max_instances: int,
    sink: Sink | None, reports: ReportBook | None, progress: Progress, on_chosen: Announce | None = None,
) -> int:
    """Search ``client`` for ``current``'s priors; record each in ``progress``; return how many.

    ``on_chosen`` hears of each prior before its images are fetched.  A prior whose images cannot
    be fetched (an offline archive tier) is passed over for the next; when none could be fetched,
    that failure is raised.
    """
    query = study_query(current, rule)
    candidates = relevant_studies(current, rule, query, client.find_studies(query))
    found = 0
    unfetched: PriorSourceError | None = None
    for study in candidates:
        if found >= rule.most_recent:
            break
        series = client.find_series(study)
        images = relevant_series(current, rule, study, series)
        picked = _pick_images(client, rule, study, images, max_instances) if images else []
        if not picked:
            continue
        chosen = _chosen(study, picked)
        if sink is not None and on_chosen is not None:
            on_chosen(chosen)
        if sink is not None:
            try:
                uids = _fetch_images(client, study, picked, sink)
            except PriorSourceError as exc:
                if exc.code != "priors.retrieve_failed":
                    raise
                logger.warning("prior source %s: a prior's images could not be fetched (%s)", client.name, exc.code)
                unfetched = unfetched or exc
                continue
        else:
            uids = tuple(i.sop_instance_uid for _, instances in picked for i in instances)
        report, unread = _report(client, study, series, reports, sink)
        progress.add(PriorStudy(
            source=client.name,
            study_instance_uid=study.study_instance_uid,
            study_date=study.study_date,
            study_time=study.study_time,
            study_description=study.study_description,
            modalities=chosen.modalities,
            accession_number_hash=chosen.accession_number_hash,
            series_instance_uids=tuple(s.series_instance_uid for s, _ in picked),
            sop_instance_uids=uids,
            delivery="none" if sink is None else ("moved" if client.moves else "handed"),
            report=report,
            unread_report_uids=unread,
        ))
        found += 1
    if unfetched is not None and not found:
        raise unfetched
    return found
