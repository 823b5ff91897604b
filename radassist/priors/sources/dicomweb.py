"""A DICOMweb server as a prior source: QIDO-RS to search (PS3.18 10.6), WADO-RS to fetch (10.4).

Searches ask for the attributes the rules compare (``includefield``) and read each answer with
:meth:`pydicom.Dataset.from_json`.  Instances are fetched one by one in the stored transfer syntax
(``multipart/related; type="application/dicom"; transfer-syntax=*``), the body read as a stream
through python-multipart's parser, so the time limit is checked between chunks.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pydicom
from python_multipart.multipart import MultipartParser, parse_options_header

from radassist.config.priors import DicomwebPriorSource
from radassist.priors.answers import FetchedInstance, InstanceAnswer, SeriesAnswer, StudyAnswer, StudyQuery
from radassist.priors.deadline import Deadline
from radassist.priors.results import PriorSourceError

logger = logging.getLogger(__name__)

_Params = list[tuple[str, str | int | float | bool | None]]
_JSON = {"Accept": "application/dicom+json"}
_DICOM = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
#: IssuerOfPatientID, StudyDescription, StudyTime, ModalitiesInStudy, AccessionNumber.
_STUDY_FIELDS = ("00100021", "00081030", "00080030", "00080061", "00080050")
#: Modality, BodyPartExamined, SeriesDescription, SeriesNumber.
_SERIES_FIELDS = ("00080060", "00180015", "0008103E", "00200011")
#: SOPClassUID, InstanceNumber, ViewPosition.
_INSTANCE_FIELDS = ("00080016", "00200013", "00185101")


class DicomwebSource:
    """One search on one DICOMweb server; :meth:`close` ends its HTTP client."""

    moves = False

    def __init__(self, config: DicomwebPriorSource, *, deadline: Deadline, our_ae_title: str = "") -> None:
        self.name = config.name
        self._config = config
        self._deadline = deadline
        self._root = config.url.rstrip("/")
        headers = {}
        token = config.bearer_token.get_secret_value()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = (config.username, config.password.get_secret_value()) if config.username else None
        verify: Any = config.tls_ca_file or True
        self._client = httpx.Client(headers=headers, auth=auth, verify=verify)

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self._deadline.timeout(self._config.timeout_seconds))

    def _error(self, exc: httpx.HTTPError) -> PriorSourceError:
        where = f"prior source {self.name}"
        if self._deadline.cancelled or isinstance(exc, httpx.TimeoutException):
            return PriorSourceError(f"{where} did not answer in time", code="priors.timeout")
        if isinstance(exc, (httpx.ConnectError, httpx.RemoteProtocolError)):
            return PriorSourceError(f"cannot reach {where} ({type(exc).__name__})", code="priors.source_down")
        return PriorSourceError(f"{where} failed ({type(exc).__name__})", code="priors.source_error")

    def _check_status(self, status: int, what: str) -> None:
        if status < 300:
            return
        code = "priors.refused" if status in (401, 403) else "priors.source_error"
        raise PriorSourceError(f"prior source {self.name} answered the {what} with HTTP {status}", code=code)

    def _search(self, path: str, params: _Params, what: str) -> list[pydicom.Dataset]:
        with self._deadline.on_cancel(self._client.close):
            try:
                response = self._client.get(f"{self._root}/{path}", params=params, headers=_JSON,
                                            timeout=self._timeout())
            except httpx.HTTPError as exc:
                raise self._error(exc) from None
        self._check_status(response.status_code, what)
        if response.status_code == 204 or not response.content:
            return []
        try:
            items = response.json()
        except ValueError:
            raise PriorSourceError(f"prior source {self.name} sent an unreadable {what} answer",
                                   code="priors.source_error") from None
        answers = []
        for item in items if isinstance(items, list) else []:
            try:
                answers.append(pydicom.Dataset.from_json(item))
            except Exception as exc:  # noqa: BLE001 -- one malformed answer is skipped, not the search
                logger.warning("prior source %s sent a malformed %s answer (%s)", self.name, what, type(exc).__name__)
        return answers

    def find_studies(self, query: StudyQuery) -> list[StudyAnswer]:
        params: _Params = [
            ("PatientID", query.patient_id), ("StudyDate", query.date_range)
        ]
        params += [("includefield", tag) for tag in _STUDY_FIELDS]
        return [StudyAnswer.from_dataset(ds) for ds in self._search("studies", params, "study search")]

    def find_series(self, study: StudyAnswer) -> list[SeriesAnswer]:
        params: _Params = [("includefield", tag) for tag in _SERIES_FIELDS]
        path = f"studies/{study.study_instance_uid}/series"
        return [SeriesAnswer.from_dataset(ds) for ds in self._search(path, params, "series search")]

    def find_instances(self, study: StudyAnswer, series: SeriesAnswer, *, views: bool = False) -> list[InstanceAnswer]:
        """The series' images; ViewPosition is always asked for (``views`` is for sources where it costs)."""
        params: _Params = [("includefield", tag) for tag in _INSTANCE_FIELDS]
        path = f"studies/{study.study_instance_uid}/series/{series.series_instance_uid}/instances"
        return [InstanceAnswer.from_dataset(ds) for ds in self._search(path, params, "image search")]

    def _parts(self, response: httpx.Response) -> Iterator[bytes]:
        """The bodies of a multipart/related answer, each as soon as it is complete."""
        _, options = parse_options_header(response.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if not boundary:
            raise PriorSourceError(f"prior source {self.name} sent no multipart answer", code="priors.retrieve_failed")
        done: list[bytes] = []
        current = io.BytesIO()

        def on_data(data: bytes, start: int, end: int) -> None:
            current.write(data[start:end])

        def on_end() -> None:
            done.append(current.getvalue())
            current.seek(0)
            current.truncate()

        parser = MultipartParser(boundary, {"on_part_data": on_data, "on_part_end": on_end})
        for chunk in response.iter_bytes():
            self._deadline.check()
            parser.write(chunk)
            yield from done
            done.clear()
        parser.finalize()
        yield from done

    def _fetch_one(self, study: StudyAnswer, series: SeriesAnswer, instance: InstanceAnswer) -> bytes:
        url = (f"{self._root}/studies/{study.study_instance_uid}/series/{series.series_instance_uid}"
               f"/instances/{instance.sop_instance_uid}")
        with self._deadline.on_cancel(self._client.close):
            try:
                with self._client.stream("GET", url, headers=_DICOM, timeout=self._timeout()) as response:
                    if response.status_code >= 300:
                        response.read()
                        self._check_status(response.status_code, "retrieval")
                    parts = list(self._parts(response))
            except httpx.HTTPError as exc:
                raise self._error(exc) from None
            except PriorSourceError:
                raise
            except Exception as exc:  # noqa: BLE001 -- a malformed multipart body
                raise PriorSourceError(f"prior source {self.name} sent an unreadable image ({type(exc).__name__})",
                                       code="priors.retrieve_failed") from None
        if len(parts) != 1:
            raise PriorSourceError(f"prior source {self.name} sent {len(parts)} parts for one image",
                                   code="priors.retrieve_failed")
        return parts[0]

    def retrieve(self, study: StudyAnswer, series: SeriesAnswer, instances: Sequence[InstanceAnswer],
                 sink: Callable[[FetchedInstance], None]) -> tuple[str, ...]:
        """WADO-RS each instance into ``sink``; the SOP Instance UIDs handed."""
        handed = []
        for instance in instances:
            data = self._fetch_one(study, series, instance)
            fetched = FetchedInstance(study.study_instance_uid, series.series_instance_uid,
                                      instance.sop_instance_uid, data)
            sink(fetched)
            handed.append(instance.sop_instance_uid)
        return tuple(handed)

    def read(self, study: StudyAnswer, series: SeriesAnswer,
             instances: Sequence[InstanceAnswer]) -> list[pydicom.Dataset]:
        """WADO-RS the instances (SRs) into memory."""
        datasets: list[pydicom.Dataset] = []
        for instance in instances:
            try:
                datasets.append(pydicom.dcmread(io.BytesIO(self._fetch_one(study, series, instance))))
            except PriorSourceError:
                raise
            except Exception as exc:  # noqa: BLE001 -- an unreadable SR is no report, not a failed search
                logger.warning("an SR of a prior could not be read (%s)", type(exc).__name__)
        return datasets

    def close(self) -> None:
        self._client.close()
