"""A DICOM Query/Retrieve SCP as a prior source: Study Root C-FIND, then C-GET or C-MOVE (pynetdicom as SCU).

One association carries the whole search: C-FIND at STUDY, SERIES and IMAGE level, then the
retrieval.  With ``retrieve = "get"`` the association also offers the storage SOP classes in the
SCP role (PS3.4 C.4.3), so the source sends the images back on it and each is handed, as received
(:meth:`pynetdicom.events.Event.encoded_dataset`), to the caller's sink.  With ``"move"`` the
source sends them to the move destination (by default our own listener) and only the count
comes back.  Identifiers are never logged; pynetdicom logs them only at DEBUG, and the project
keeps its logger at WARNING.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pydicom
from pydicom import uid as uids
from pynetdicom import AE, build_role, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from radassist.config.priors import DicomPriorSource
from radassist.priors.answers import FetchedInstance, InstanceAnswer, SeriesAnswer, StudyAnswer, StudyQuery
from radassist.priors.deadline import Deadline
from radassist.priors.results import PriorSourceError

logger = logging.getLogger(__name__)

#: The storage SOP classes a C-GET may bring back: projection and cross-sectional images, and SRs.
GET_STORAGE_CLASSES: tuple[str, ...] = (
    uids.ComputedRadiographyImageStorage,
    uids.DigitalXRayImageStorageForPresentation,
    uids.DigitalXRayImageStorageForProcessing,
    uids.DigitalMammographyXRayImageStorageForPresentation,
    uids.DigitalMammographyXRayImageStorageForProcessing,
    uids.BreastTomosynthesisImageStorage,
    uids.CTImageStorage,
    uids.EnhancedCTImageStorage,
    uids.MRImageStorage,
    uids.EnhancedMRImageStorage,
    uids.UltrasoundImageStorage,
    uids.UltrasoundMultiFrameImageStorage,
    uids.NuclearMedicineImageStorage,
    uids.PositronEmissionTomographyImageStorage,
    uids.XRayAngiographicImageStorage,
    uids.XRayRadiofluoroscopicImageStorage,
    uids.SecondaryCaptureImageStorage,
    uids.BasicTextSRStorage,
    uids.EnhancedSRStorage,
    uids.ComprehensiveSRStorage,
    uids.Comprehensive3DSRStorage,
)

#: Transfer syntaxes we accept images in: uncompressed first, then those the imaging code decodes.
GET_TRANSFER_SYNTAXES: tuple[str, ...] = (
    uids.ExplicitVRLittleEndian,
    uids.ImplicitVRLittleEndian,
    uids.JPEGLosslessSV1,
    uids.JPEG2000Lossless,
    uids.JPEGLSLossless,
    uids.RLELossless,
    uids.JPEGBaseline8Bit,
    uids.JPEG2000,
)

_PENDING = (0xFF00, 0xFF01)
_SUCCESS_OR_WARNING = (0x0000, 0xB000)
#: "SOP class not supported" and "refused: not authorised" (PS3.7 C.4): the source will not serve us.
_REFUSED = (0x0122, 0x0124)


def _query(level: str, **keys: Any) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    if any(isinstance(v, str) and not v.isascii() for v in keys.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def _no_delay(assoc: Association) -> None:
    """Send each PDU at once (``TCP_NODELAY``): pynetdicom writes a request's command and its
    identifier as separate PDUs, and with Nagle on the second waits for the peer's delayed ACK."""
    sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # the connection is already gone; the next step reports it


class DimseSource:
    """One search on one Q/R SCP; open an association lazily, close it with :meth:`close`."""

    def __init__(self, config: DicomPriorSource, *, deadline: Deadline, our_ae_title: str) -> None:
        self.name = config.name
        self._config = config
        self._deadline = deadline
        self._calling = config.calling_ae_title or our_ae_title
        self._move_destination = config.move_destination or our_ae_title
        self.moves = config.retrieve == "move"
        self._assoc: Association | None = None
        self._on_store: Callable[[Event], int] | None = None

    # -- the association -------------------------------------------------------------------

    def _ae(self, timeout: float) -> AE:
        ae = AE(ae_title=self._calling)
        ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        if self.moves:
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
        else:
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
            for sop_class in GET_STORAGE_CLASSES:
                ae.add_requested_context(sop_class, list(GET_TRANSFER_SYNTAXES))
        return ae

    def _associate(self) -> Association:
        if self._assoc is not None and self._assoc.is_established:
            return self._assoc
        where = f"prior source {self.name}"
        timeout = self._deadline.timeout(self._config.timeout_seconds)
        ae = self._ae(timeout)
        started = time.monotonic()
        roles: list[Any] = [] if self.moves else [build_role(c, scp_role=True) for c in GET_STORAGE_CLASSES]
        with self._deadline.on_cancel(ae.shutdown):
            try:
                assoc = ae.associate(
                    self._config.host, self._config.port, ae_title=self._config.ae_title, ext_neg=roles,
                    evt_handlers=[(evt.EVT_C_STORE, self._handle_store)],
                )
            except (OSError, ValueError, RuntimeError) as exc:
                raise PriorSourceError(f"cannot associate with {where} ({type(exc).__name__})",
                                       code="priors.source_down") from None
        self._deadline.check()
        _no_delay(assoc)
        if assoc.is_rejected:
            raise PriorSourceError(f"{where} rejected the association", code="priors.refused")
        if not assoc.is_established:
            if time.monotonic() - started >= timeout * 0.9:
                raise PriorSourceError(f"{where} did not answer the association request", code="priors.timeout")
            raise PriorSourceError(f"no association with {where} (refused or aborted)", code="priors.source_down")
        self._assoc = assoc
        return assoc

    def _step(self) -> tuple[Association, float]:
        """The association, its timeouts set for the next DIMSE exchange, and that timeout."""
        assoc = self._associate()
        timeout = self._deadline.timeout(self._config.timeout_seconds)
        assoc.dimse_timeout = timeout
        assoc.network_timeout = timeout
        return assoc, timeout

    def _answers(self, responses: Iterator[tuple[pydicom.Dataset, pydicom.Dataset | None]],
                 what: str, timeout: float) -> Iterator[tuple[int, pydicom.Dataset | None, pydicom.Dataset]]:
        """Each response as (status, identifier, status dataset); an aborted exchange raises.

        pynetdicom ends an exchange that timed out or was aborted with an empty status: one that
        ended after the whole timeout is a silent source, an earlier one a source that hung up.
        """
        started = time.monotonic()
        for status, identifier in responses:
            if "Status" not in status:
                self._assoc = None
                self._deadline.check()
                if time.monotonic() - started >= timeout * 0.9:
                    raise PriorSourceError(f"prior source {self.name} did not answer the {what}",
                                           code="priors.timeout")
                raise PriorSourceError(f"prior source {self.name} aborted the {what}", code="priors.refused")
            yield int(status.Status), identifier, status

    def _find(self, query: pydicom.Dataset, what: str) -> list[pydicom.Dataset]:
        assoc, timeout = self._step()
        found: list[pydicom.Dataset] = []
        with self._deadline.on_cancel(assoc.abort):
            responses = assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
            for status, identifier, _ in self._answers(responses, what, timeout):
                if status in _PENDING:
                    if identifier is not None:
                        found.append(identifier)
                elif status == 0x0000:
                    return found
                else:
                    code = "priors.refused" if status in _REFUSED else "priors.source_error"
                    raise PriorSourceError(f"prior source {self.name} failed the {what} (status 0x{status:04X})",
                                           code=code)
        return found

    # -- the search --------------------------------------------------------------------------

    def find_studies(self, query: StudyQuery) -> list[StudyAnswer]:
        identifier = _query(
            "STUDY", PatientID=query.patient_id, IssuerOfPatientID="", StudyInstanceUID="",
            StudyDate=query.date_range, StudyTime="", StudyDescription="", AccessionNumber="",
            ModalitiesInStudy="",
        )
        return [StudyAnswer.from_dataset(ds) for ds in self._find(identifier, "study search")]

    def find_series(self, study: StudyAnswer) -> list[SeriesAnswer]:
        identifier = _query(
            "SERIES", StudyInstanceUID=study.study_instance_uid, SeriesInstanceUID="", Modality="",
            BodyPartExamined="", SeriesDescription="", SeriesNumber="",
        )
        return [SeriesAnswer.from_dataset(ds) for ds in self._find(identifier, "series search")]

    def find_instances(self, study: StudyAnswer, series: SeriesAnswer, *, views: bool = False) -> list[InstanceAnswer]:
        """The series' images; ViewPosition is always asked for (``views`` is for sources where it costs)."""
        identifier = _query(
            "IMAGE", StudyInstanceUID=study.study_instance_uid, SeriesInstanceUID=series.series_instance_uid,
            SOPInstanceUID="", SOPClassUID="", InstanceNumber="", ViewPosition="",
        )
        return [InstanceAnswer.from_dataset(ds) for ds in self._find(identifier, "image search")]

    # -- retrieval ---------------------------------------------------------------------------

    def _handle_store(self, event: Event) -> int:
        if self._on_store is None:
            return 0xA702  # a sub-operation we did not ask for: refuse it
        return self._on_store(event)

    def _retrieve_query(self, study: StudyAnswer, series: SeriesAnswer,
                        instances: Sequence[InstanceAnswer]) -> pydicom.Dataset:
        return _query(
            "IMAGE", StudyInstanceUID=study.study_instance_uid, SeriesInstanceUID=series.series_instance_uid,
            SOPInstanceUID=[i.sop_instance_uid for i in instances],
        )

    def _run_retrieval(self, query: pydicom.Dataset, what: str) -> int:
        """Send the C-GET or C-MOVE; return how many sub-operations completed."""
        assoc, timeout = self._step()
        completed = 0
        with self._deadline.on_cancel(assoc.abort):
            if self.moves:
                responses = assoc.send_c_move(query, self._move_destination,
                                              StudyRootQueryRetrieveInformationModelMove)
            else:
                responses = assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)
            for status, _, ds in self._answers(responses, what, timeout):
                completed = int(ds.get("NumberOfCompletedSuboperations") or completed)
                self._deadline.check()
                if status in _PENDING:
                    continue
                if status in _SUCCESS_OR_WARNING or completed:
                    return completed
                raise PriorSourceError(f"prior source {self.name} failed the {what} (status 0x{status:04X})",
                                       code="priors.retrieve_failed")
        return completed

    def retrieve(self, study: StudyAnswer, series: SeriesAnswer, instances: Sequence[InstanceAnswer],
                 sink: Callable[[FetchedInstance], None]) -> tuple[str, ...]:
        """C-GET the instances into ``sink`` (or C-MOVE them); the SOP Instance UIDs handed (or moved)."""
        handed: list[str] = []
        failure: list[Exception] = []

        def store(event: Event) -> int:
            try:
                ds = event.dataset
                fetched = FetchedInstance(
                    study_instance_uid=str(ds.StudyInstanceUID),
                    series_instance_uid=str(ds.SeriesInstanceUID),
                    sop_instance_uid=str(ds.SOPInstanceUID),
                    data=event.encoded_dataset(include_meta=True),
                )
                sink(fetched)
            except Exception as exc:  # noqa: BLE001 -- the SCP is told; the search reports it
                failure.append(exc)
                return 0xA700
            handed.append(fetched.sop_instance_uid)
            return 0x0000

        self._on_store = store
        try:
            completed = self._run_retrieval(self._retrieve_query(study, series, instances), "retrieval")
        except PriorSourceError:
            if not failure:
                raise
            completed = 0
        finally:
            self._on_store = None
        if failure:  # our side refused the images: that, not the source's status, is the cause
            exc = failure[0]
            if isinstance(exc, PriorSourceError):
                raise exc
            raise PriorSourceError(f"a prior image could not be stored ({type(exc).__name__})",
                                   code="priors.store_failed")
        if self.moves:
            if completed < len(instances):
                raise PriorSourceError(f"prior source {self.name} moved {completed} of {len(instances)} images",
                                       code="priors.retrieve_failed")
            return tuple(i.sop_instance_uid for i in instances)
        return tuple(handed)

    def read(self, study: StudyAnswer, series: SeriesAnswer,
             instances: Sequence[InstanceAnswer]) -> list[pydicom.Dataset]:
        """C-GET the instances (SRs) into memory; a C-MOVE source cannot (see ``moves``)."""
        if self.moves:
            raise PriorSourceError("a C-MOVE source cannot be read here", code="priors.retrieve_failed")
        datasets: list[pydicom.Dataset] = []

        def keep(fetched: FetchedInstance) -> None:
            try:
                datasets.append(pydicom.dcmread(io.BytesIO(fetched.data)))
            except Exception as exc:  # noqa: BLE001 -- an unreadable SR is no report, not a failed search
                logger.warning("an SR of a prior could not be read (%s)", type(exc).__name__)

        self.retrieve(study, series, instances, keep)
        return datasets

    def close(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            try:
                assoc.release()
            except Exception:  # noqa: BLE001 -- the search is over; a failed release changes nothing
                assoc.abort()
