"""Orthanc's REST API as a prior source, through Orthanc's own client (``orthanc-api-client``).

Searches are ``POST /tools/find`` at Study, Series and Instance level (expanded: main DICOM tags
and Orthanc's IDs).  What Orthanc does not index is read from a stored file: the study's
IssuerOfPatientID from ``/studies/{id}/module-patient``, an image's ViewPosition from
``/instances/{id}/content/0018-5101`` (only when a rule names views).  Files come from
``/instances/{id}/file``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pydicom
from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as orthanc_errors

from radassist.config.priors import OrthancPriorSource
from radassist.priors.answers import FetchedInstance, InstanceAnswer, SeriesAnswer, StudyAnswer, StudyQuery
from radassist.priors.deadline import Deadline
from radassist.priors.results import PriorSourceError

logger = logging.getLogger(__name__)


def _dataset(*tag_maps: Any) -> pydicom.Dataset:
    """A dataset from Orthanc's ``{"Keyword": "value"}`` maps (unknown keywords are skipped)."""
    ds = pydicom.Dataset()
    for tags in tag_maps:
        for keyword, value in (tags or {}).items():
            if isinstance(value, str) and pydicom.datadict.tag_for_keyword(keyword) is not None:
                try:
                    setattr(ds, keyword, value.split("\\") if "\\" in value else value)
                except Exception:  # noqa: BLE001 -- a value pydicom refuses is an unknown value
                    continue
    return ds


class OrthancSource:
    """One search on one Orthanc; :meth:`close` ends its HTTP session."""

    moves = False

    def __init__(self, config: OrthancPriorSource, *, deadline: Deadline, our_ae_title: str = "") -> None:
        self.name = config.name
        self._config = config
        self._deadline = deadline
        password = config.password.get_secret_value()
        self._client = OrthancApiClient(config.url, user=config.username or None, pwd=password or None)

    def _error(self, exc: orthanc_errors.OrthancApiException) -> PriorSourceError:
        where = f"prior source {self.name}"
        if self._deadline.cancelled or isinstance(exc, orthanc_errors.TimeoutError):
            return PriorSourceError(f"{where} did not answer in time", code="priors.timeout")
        if isinstance(exc, orthanc_errors.HttpError):
            status = int(exc.http_status_code or 0)
            code = "priors.refused" if status in (401, 403) else "priors.source_error"
            return PriorSourceError(f"{where} answered with HTTP {status}", code=code)
        return PriorSourceError(f"cannot reach {where} ({type(exc).__name__})", code="priors.source_down")

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """One request within the time limit; Orthanc's answer (the response object)."""
        timeout = self._deadline.timeout(self._config.timeout_seconds)
        with self._deadline.on_cancel(self._client.close):
            try:
                return getattr(self._client, method)(endpoint, timeout=timeout, **kwargs)
            except orthanc_errors.OrthancApiException as exc:
                raise self._error(exc) from None
            except Exception as exc:  # noqa: BLE001 -- the session closed under us by a cancel
                if self._deadline.cancelled:
                    raise PriorSourceError(f"prior source {self.name} did not answer in time",
                                           code="priors.timeout") from None
                raise PriorSourceError(f"prior source {self.name} failed ({type(exc).__name__})",
                                       code="priors.source_error") from None

    def _find(self, level: str, query: dict[str, str]) -> list[dict[str, Any]]:
        answer = self._call("post", "tools/find", json={"Level": level, "Query": query, "Expand": True}).json()
        return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []

    def _issuer(self, study_id: str) -> str:
        try:
            module = self._call("get", f"studies/{study_id}/module-patient", params={"simplify": ""}).json()
        except PriorSourceError as exc:
            if exc.code != "priors.source_error":
                raise
            return ""  # not readable: the issuer stays unknown
        value = module.get("IssuerOfPatientID") if isinstance(module, dict) else None
        return value.strip() if isinstance(value, str) else ""

    def find_studies(self, query: StudyQuery) -> list[StudyAnswer]:
        found = self._find("Study", {"PatientID": query.patient_id, "StudyDate": query.date_range})
        answers = []
        for item in found:
            ds = _dataset(item.get("MainDicomTags"), item.get("PatientMainDicomTags"))
            issuer = self._issuer(str(item.get("ID", "")))
            if issuer:
                ds.update(_dataset({"IssuerOfPatientID": issuer}))
            answers.append(StudyAnswer.from_dataset(ds, locator=str(item.get("ID", ""))))
        return answers

    def find_series(self, study: StudyAnswer) -> list[SeriesAnswer]:
        found = self._find("Series", {"StudyInstanceUID": study.study_instance_uid})
        return [SeriesAnswer.from_dataset(_dataset(item.get("MainDicomTags")), locator=str(item.get("ID", "")))
                for item in found]

    def _view_position(self, instance_id: str) -> str:
        try:
            response = self._call("get", f"instances/{instance_id}/content/0018-5101")
        except PriorSourceError as exc:
            if exc.code != "priors.source_error":
                raise
            return ""  # no ViewPosition in this image
        return str(response.text).strip().strip("\x00").upper()

    def find_instances(self, study: StudyAnswer, series: SeriesAnswer, *, views: bool = False) -> list[InstanceAnswer]:
        found = self._find("Instance", {"StudyInstanceUID": study.study_instance_uid,
                                        "SeriesInstanceUID": series.series_instance_uid})
        answers = []
        for item in found:
            ds = _dataset(item.get("MainDicomTags"))
            instance_id = str(item.get("ID", ""))
            if views:
                ds.update(_dataset({"ViewPosition": self._view_position(instance_id)}))
            answers.append(InstanceAnswer.from_dataset(ds, locator=instance_id))
        return answers

    def _file(self, instance: InstanceAnswer) -> bytes:
        return bytes(self._call("get", f"instances/{instance.locator}/file").content)

    def retrieve(self, study: StudyAnswer, series: SeriesAnswer, instances: Sequence[InstanceAnswer],
                 sink: Callable[[FetchedInstance], None]) -> tuple[str, ...]:
        """Download each instance into ``sink``; the SOP Instance UIDs handed."""
        handed = []
        for instance in instances:
            sink(FetchedInstance(study.study_instance_uid, series.series_instance_uid,
                                 instance.sop_instance_uid, self._file(instance)))
            handed.append(instance.sop_instance_uid)
        return tuple(handed)

    def read(self, study: StudyAnswer, series: SeriesAnswer,
             instances: Sequence[InstanceAnswer]) -> list[pydicom.Dataset]:
        """Download the instances (SRs) into memory."""
        datasets: list[pydicom.Dataset] = []
        for instance in instances:
            data = self._file(instance)
            try:
                datasets.append(pydicom.dcmread(io.BytesIO(data)))
            except Exception as exc:  # noqa: BLE001 -- an unreadable SR is no report, not a failed search
                logger.warning("an SR of a prior could not be read (%s)", type(exc).__name__)
        return datasets

    def close(self) -> None:
        self._client.close()
