"""Prior sources: one class per ``[[prior_sources]]`` kind, all answering the same few questions.

Every source searches (studies of a patient, series of a study, images of a series), fetches
images into the caller's sink (or, for C-MOVE, has them sent to the move destination) and reads
SRs into memory.  Each step keeps within the search's :class:`~radassist.priors.deadline.Deadline`
and fails with a :class:`~radassist.priors.results.PriorSourceError` whose code says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import pydicom

from radassist.config.priors import DicomPriorSource, DicomwebPriorSource, OrthancPriorSource
from radassist.priors.answers import FetchedInstance, InstanceAnswer, SeriesAnswer, StudyAnswer, StudyQuery
from radassist.priors.deadline import Deadline

Sink = Callable[[FetchedInstance], None]


class PriorSourceClient(Protocol):
    name: str
    moves: bool
    """True when :meth:`retrieve` has the source send the images elsewhere (C-MOVE) and :meth:`read` cannot work."""

    def find_studies(self, query: StudyQuery) -> list[StudyAnswer]: ...

    def find_series(self, study: StudyAnswer) -> list[SeriesAnswer]: ...

    def find_instances(
        self, study: StudyAnswer, series: SeriesAnswer, *, views: bool = False
    ) -> list[InstanceAnswer]: ...

    def retrieve(
        self, study: StudyAnswer, series: SeriesAnswer, instances: Sequence[InstanceAnswer], sink: Sink
    ) -> tuple[str, ...]: ...

    def read(
        self, study: StudyAnswer, series: SeriesAnswer, instances: Sequence[InstanceAnswer]
    ) -> list[pydicom.Dataset]: ...

    def close(self) -> None: ...


def open_source(
    config: DicomPriorSource | DicomwebPriorSource | OrthancPriorSource, *, deadline: Deadline, our_ae_title: str
) -> PriorSourceClient:
    """The client of one configured source (nothing is contacted until its first step)."""
    if isinstance(config, DicomPriorSource):
        from radassist.priors.sources.dimse import DimseSource

        return DimseSource(config, deadline=deadline, our_ae_title=our_ae_title)
    if isinstance(config, DicomwebPriorSource):
        from radassist.priors.sources.dicomweb import DicomwebSource

        return DicomwebSource(config, deadline=deadline)
    from radassist.priors.sources.orthanc import OrthancSource

    return OrthancSource(config, deadline=deadline)
