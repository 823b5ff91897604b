"""The entry point: find and fetch a study's priors within a time limit, and say why when there are none.

:func:`fetch_priors` takes plain values and returns a frozen
:class:`~radassist.priors.results.PriorsResult`; :func:`priors_for` reads them from the settings.
The search runs in a thread of its own and the caller waits at most the time limit: a source that
is slow, silent or down never stalls drafting.  When the time is up, the sink is closed first
(waiting for an image being handed over, so none is handed after the return), then the search is
cancelled, which interrupts the source's blocked step.  Sources are tried in order; the first that
holds relevant priors gives them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from radassist.config import Settings
from radassist.config.priors import DicomPriorSource, DicomwebPriorSource, OrthancPriorSource, PriorRule
from radassist.identifiers import study_handle
from radassist.priors.answers import FetchedInstance
from radassist.priors.deadline import Deadline
from radassist.priors.reports import ReportBook
from radassist.priors.results import REASONS, ChosenStudy, CurrentStudy, PriorSourceError, PriorsResult
from radassist.priors.search import Announce, Progress, search_source
from radassist.priors.sources import Sink, open_source

logger = logging.getLogger(__name__)

SourceConfig = DicomPriorSource | DicomwebPriorSource | OrthancPriorSource


class _Gate:
    """The caller's sink (and announcer), closed for good when the caller stops waiting; their errors become codes."""

    def __init__(self, sink: Sink, on_chosen: Announce | None = None) -> None:
        self._sink = sink
        self._on_chosen = on_chosen
        self._lock = threading.Lock()
        self._open = True

    def _hand(self, call: Callable[[], None], what: str) -> None:
        with self._lock:
            if not self._open:
                raise PriorSourceError("the time limit of the prior search ran out", code="priors.timeout")
            try:
                call()
            except Exception as exc:  # noqa: BLE001 -- the search reports it as its outcome
                raise PriorSourceError(f"{what} ({type(exc).__name__})", code="priors.store_failed") from None

    def __call__(self, fetched: FetchedInstance) -> None:
        self._hand(lambda: self._sink(fetched), "a prior image could not be stored")

    def announce(self, chosen: ChosenStudy) -> None:
        if self._on_chosen is not None:
            on_chosen = self._on_chosen
            self._hand(lambda: on_chosen(chosen), "a prior study could not be recorded")

    def close(self) -> None:
        with self._lock:
            self._open = False


class _Search:
    """The search thread's work and outcome."""

    def __init__(self, current: CurrentStudy, sources: Sequence[SourceConfig], rule: PriorRule, *,
                 deadline: Deadline, our_ae_title: str, max_instances: int, sink: _Gate | None,
                 reports: ReportBook | None) -> None:
        self.current, self.sources, self.rule = current, sources, rule
        self.deadline, self.our_ae_title, self.max_instances = deadline, our_ae_title, max_instances
        self.sink, self.reports = sink, reports
        self.progress = Progress()
        self.tried: list[str] = []
        self.code: str | None = "priors.none_found"

    def _one(self, config: SourceConfig) -> tuple[int, str | None]:
        """Search one source: (priors found, the error code that cut it short or None)."""
        client = open_source(config, deadline=self.deadline, our_ae_title=self.our_ae_title)
        try:
            found = search_source(client, self.current, self.rule, max_instances=self.max_instances,
                                  sink=self.sink, reports=self.reports, progress=self.progress,
                                  on_chosen=self.sink.announce if self.sink is not None else None)
            return found, None
        except PriorSourceError as exc:
            logger.warning("prior source %s: %s", config.name, exc)
            return len(self.progress.snapshot()), exc.code
        except Exception as exc:  # noqa: BLE001 -- a bug in one source must not lose the draft
            # No traceback: a library's message may quote a dataset.
            logger.error("prior source %s failed unexpectedly (%s)", config.name, type(exc).__name__)
            return len(self.progress.snapshot()), "priors.source_error"
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001 -- closing after the search changes nothing
                pass

    def __call__(self) -> None:
        errors: list[str] = []
        for config in self.sources:
            self.tried.append(config.name)
            found, error = self._one(config)
            if error is not None:
                errors.append(error)
            if found:
                self.code = error
                return
            if error == "priors.timeout":
                break
        self.code = errors[0] if errors else "priors.none_found"


def fetch_priors(
    current: CurrentStudy,
    *,
    sources: Sequence[SourceConfig],
    rule: PriorRule,
    time_limit_seconds: float,
    our_ae_title: str,
    max_instances: int = 200,
    sink: Sink | None = None,
    reports: ReportBook | None = None,
    on_chosen: Announce | None = None,
) -> PriorsResult:
    """Find ``current``'s priors on ``sources`` by ``rule`` and hand their images to ``sink``.

    ``sink`` receives each fetched image (a DICOM file) on the search thread; ``None`` fetches no
    image (the priors are only found, with their reports).  ``on_chosen`` hears of each prior on
    the search thread before its first image is fetched or moved (with a sink only); when it
    raises, the search stops as when the sink does.  ``reports`` looks up the RIS's signed
    reports and our own SRs (:class:`~radassist.priors.reports.DatabaseReportBook`); ``None``
    takes reports from verified SRs alone.  Returns within ``time_limit_seconds``.
    """
    started = time.monotonic()
    if not current.patient_id:
        return PriorsResult.unavailable("priors.no_patient_id")
    if rule.most_recent == 0:
        return PriorsResult.unavailable("priors.disabled")
    if not sources:
        return PriorsResult.unavailable("priors.no_source")
    deadline = Deadline(time_limit_seconds)
    gate = _Gate(sink, on_chosen) if sink is not None else None
    search = _Search(current, sources, rule, deadline=deadline, our_ae_title=our_ae_title,
                     max_instances=max_instances, sink=gate, reports=reports)
    thread = threading.Thread(target=search, name="priors-search", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    code = search.code
    if thread.is_alive():
        if gate is not None:
            gate.close()
        deadline.cancel()
        code = "priors.timeout"
    priors = search.progress.snapshot()
    elapsed = time.monotonic() - started
    result = PriorsResult(priors, code, REASONS[code] if code else "", elapsed, tuple(search.tried))
    logger.info("priors of study %s: %d available (%s) in %.1f s", study_handle(current.study_instance_uid),
                len(priors), code or "complete", elapsed)
    return result


def priors_for(
    settings: Settings, current: CurrentStudy, *, profile: str | None, sink: Sink | None = None,
    reports: ReportBook | None = None, on_chosen: Announce | None = None,
) -> PriorsResult:
    """:func:`fetch_priors` with the sources, the profile's rule and the limits of ``settings``."""
    return fetch_priors(
        current,
        sources=settings.prior_sources,
        rule=settings.priors.rule_for(profile),
        time_limit_seconds=settings.priors.time_limit_seconds,
        our_ae_title=settings.dicom.ae_title,
        max_instances=settings.priors.max_instances,
        sink=sink,
        reports=reports,
        on_chosen=on_chosen,
    )
