"""Priors: a patient's earlier relevant studies, found and fetched from the hospital's archive, with their reports.

Entry points: :func:`fetch_priors` (plain values) and :func:`priors_for` (from the settings); both
return a frozen :class:`PriorsResult` within the time limit, saying what was found and fetched or
why no prior is available.
"""

from radassist.priors.answers import FetchedInstance
from radassist.priors.fetch import fetch_priors, priors_for
from radassist.priors.reports import DatabaseReportBook, ReportBook, report_from_sr
from radassist.priors.results import REASONS, CurrentStudy, PriorReport, PriorsResult, PriorStudy

__all__ = [
    "REASONS", "CurrentStudy", "DatabaseReportBook", "FetchedInstance", "PriorReport", "PriorStudy", "PriorsResult",
    "ReportBook", "fetch_priors", "priors_for", "report_from_sr",
]
