"""Priors found and fetched from Orthanc, the real archive, by each kind of source.

The archive holds the patient's current chest radiograph, two earlier ones (A: 2023, reported in a
verified SR, next to our own draft SR that someone marked verified later; B: 2021, reported by the
RIS) and studies that must never be taken: another patient, another issuer, too old, another body
part, another modality, a later study.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import load_settings
from radassist.config.priors import (
    DicomPriorSource,
    DicomwebPriorSource,
    OrthancPriorSource,
    PriorRule,
    PriorsSettings,
)
from radassist.db.engine import make_engine
from radassist.db.migrate import upgrade
from radassist.db.tables import Report
from radassist.identifiers import accession_hash
from radassist.priors import DatabaseReportBook, FetchedInstance, fetch_priors, priors_for
from radassist.priors.fetch import SourceConfig
from radassist.priors.results import CurrentStudy
from tests.conftest import wait_until
from tests.dicom_factories import SENTINEL_VALUES
from tests.priors.conftest import OUR_AE, Archive
from tests.priors.factories import PRIOR_B_ACCESSION, REPORT_A_IMPRESSION

KINDS = ("dicom-get", "dicom-move", "dicomweb", "orthanc")
RIS_REPORT_B = "FINAL REPORT B: stable small nodule, right upper lobe."
CXR = PriorRule(profile="cxr", views=("PA", "AP"), most_recent=2)


def source(kind: str, *, port: int, timeout_seconds: float = 10.0) -> SourceConfig:
    if kind.startswith("dicom-"):
        return DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=port,
                                retrieve="get" if kind == "dicom-get" else "move", timeout_seconds=timeout_seconds)
    if kind == "dicomweb":
        return DicomwebPriorSource(kind="dicomweb", name="archive", url=f"http://127.0.0.1:{port}/dicom-web",
                                   timeout_seconds=timeout_seconds)
    return OrthancPriorSource(kind="orthanc", name="archive", url=f"http://127.0.0.1:{port}",
                              timeout_seconds=timeout_seconds)


def archive_source(kind: str, archive: Archive) -> SourceConfig:
    return source(kind, port=archive.dicom_port if kind.startswith("dicom-") else archive.http_port)


@pytest.fixture(scope="module")
def report_book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseReportBook]:
    """Our database (SQLite, migrated) holding the RIS's final report of prior B."""
    folder = tmp_path_factory.mktemp("db")
    settings = load_settings(environ={"RADASSIST_STORAGE_PATH": str(folder),
                                      "RADASSIST_DATABASE_URL": f"sqlite:///{folder / 'radassist.sqlite3'}"})
    upgrade(settings)
    engine = make_engine(settings.database_url)
    sessions = sessionmaker(engine, class_=Session, expire_on_commit=False)
    with sessions.begin() as session:
        session.add(Report(accession_number_hash=accession_hash(PRIOR_B_ACCESSION), status="F",
                           text=RIS_REPORT_B, control_id="MSG-B-1"))
    yield DatabaseReportBook(sessions)
    engine.dispose()


class Collected:
    """The sink: every image handed over, parsed back."""

    def __init__(self) -> None:
        self.items: list[FetchedInstance] = []

    def __call__(self, fetched: FetchedInstance) -> None:
        self.items.append(fetched)

    def datasets(self) -> list[pydicom.Dataset]:
        return [pydicom.dcmread(io.BytesIO(item.data)) for item in self.items]


def _uids(datasets: list[pydicom.Dataset]) -> set[str]:
    return {str(ds.SOPInstanceUID) for ds in datasets}


def _moved(folder: Path) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("kind", KINDS)
def test_the_newest_relevant_priors_are_found_fetched_and_reported(
    kind: str, archive: Archive, report_book: DatabaseReportBook
) -> None:
    history = archive.history
    sink = Collected()
    result = fetch_priors(archive.current, sources=[archive_source(kind, archive)], rule=CXR, time_limit_seconds=30,
                          our_ae_title=OUR_AE, sink=sink, reports=report_book)

    assert result.reason_code is None and result.available, result
    study_uids = [p.study_instance_uid for p in result.priors]
    assert study_uids == [history.prior_a[0].StudyInstanceUID, history.prior_b[0].StudyInstanceUID]
    frontal = {str(ds.SOPInstanceUID) for ds in (history.prior_a[0], history.prior_b[0])}  # PA only, never LL
    assert {uid for p in result.priors for uid in p.sop_instance_uids} == frontal
    prior_a, prior_b = result.priors
    assert prior_a.study_date is not None and prior_a.study_date.isoformat() == "2023-01-10"
    assert prior_a.study_description == "XR CHEST 2 VIEWS" and prior_a.source == "archive"
    assert prior_b.report is not None and prior_b.report.origin == "ris" and prior_b.report.text == RIS_REPORT_B

    if kind == "dicom-move":
        assert all(p.delivery == "moved" for p in result.priors) and sink.items == []
        # The SR went with the images, for the caller to read; our own draft SR stayed behind.
        assert prior_a.report is None
        assert prior_a.unread_report_uids == (str(history.report_a.SOPInstanceUID),)
        wanted = frontal | {str(history.report_a.SOPInstanceUID)}
        wait_until(lambda: wanted <= _moved(archive.move_destination.folder), timeout=30)
        moved = _moved(archive.move_destination.folder)
        assert str(history.our_draft_a.SOPInstanceUID) not in moved
        assert not {str(ds.SOPInstanceUID) for ds in (history.prior_a[1], history.prior_b[1])} & moved  # laterals
    else:
        assert all(p.delivery == "handed" for p in result.priors)
        received = sink.datasets()
        assert _uids(received) == frontal and len(received) == 2
        assert {(i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid) for i in sink.items} == {
            (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)) for ds in received
        }
        assert prior_a.report is not None and prior_a.report.origin == "sr"
        assert prior_a.report.sop_instance_uid == history.report_a.SOPInstanceUID
        assert REPORT_A_IMPRESSION in prior_a.report.text and "OUR DRAFT" not in prior_a.report.text


@pytest.mark.parametrize("kind", ("dicom-get", "dicomweb", "orthanc"))
def test_the_current_study_is_never_its_own_prior(kind: str, archive: Archive) -> None:
    history = archive.history
    # Draft prior A as if it were the current study: B is its prior; A itself (and the later
    # studies, among them the real current one) never are.
    current = CurrentStudy.from_dataset(history.prior_a[0])
    rule = PriorRule(views=("PA",), most_recent=5)
    result = fetch_priors(current, sources=[archive_source(kind, archive)], rule=rule, time_limit_seconds=30,
                          our_ae_title=OUR_AE, sink=Collected())
    assert [p.study_instance_uid for p in result.priors] == [history.prior_b[0].StudyInstanceUID]


@pytest.mark.parametrize("kind", ("dicom-get", "dicomweb", "orthanc"))
def test_without_our_database_the_draft_sr_is_still_never_the_report(kind: str, archive: Archive) -> None:
    result = fetch_priors(archive.current, sources=[archive_source(kind, archive)], rule=CXR, time_limit_seconds=30,
                          our_ae_title=OUR_AE)
    prior_a = result.priors[0]
    assert prior_a.delivery == "none" and prior_a.sop_instance_uids == (str(archive.history.prior_a[0].SOPInstanceUID),)
    assert prior_a.report is not None and prior_a.report.sop_instance_uid == archive.history.report_a.SOPInstanceUID
    assert result.priors[1].report is None  # B's report lives in the RIS only


@pytest.mark.parametrize("kind", KINDS)
def test_a_patient_without_priors_gets_none_found(kind: str, archive: Archive) -> None:
    current = CurrentStudy(study_instance_uid="1.2.3.4", patient_id="NOBODY-0001", modalities=("DX",),
                           body_part="CHEST")
    result = fetch_priors(current, sources=[archive_source(kind, archive)], rule=CXR, time_limit_seconds=30,
                          our_ae_title=OUR_AE, sink=Collected())
    assert not result.available and result.reason_code == "priors.none_found"
    assert result.reason == "No earlier relevant study of this patient was found."
    assert result.sources_tried == ("archive",)


@pytest.mark.parametrize("kind", KINDS)
def test_a_source_that_is_down_gives_source_down_within_the_time_limit(kind: str, archive: Archive,
                                                                      closed_port: int) -> None:
    result = fetch_priors(archive.current, sources=[source(kind, port=closed_port)], rule=CXR, time_limit_seconds=20,
                          our_ae_title=OUR_AE, sink=Collected())
    assert not result.available and result.reason_code == "priors.source_down"
    assert result.reason == "The prior source could not be reached."
    assert result.elapsed_seconds < 20


@pytest.mark.parametrize("kind", KINDS)
def test_a_source_that_never_answers_ends_at_the_time_limit(kind: str, archive: Archive, silent_port: int) -> None:
    # Each step may wait 60 s; the search as a whole may take 1.5 s.
    result = fetch_priors(archive.current, sources=[source(kind, port=silent_port, timeout_seconds=60)], rule=CXR,
                          time_limit_seconds=1.5, our_ae_title=OUR_AE, sink=Collected())
    assert not result.available and result.reason_code == "priors.timeout"
    assert result.reason == "The prior source did not answer within the time limit."
    assert result.elapsed_seconds < 15  # far below one step's 60 s: the caller was not held


def test_a_down_source_is_passed_over_for_the_next(archive: Archive, closed_port: int) -> None:
    down = DicomPriorSource(name="down", ae_title="DOWN", host="127.0.0.1", port=closed_port)
    result = fetch_priors(archive.current, sources=[down, archive_source("orthanc", archive)], rule=CXR,
                          time_limit_seconds=30, our_ae_title=OUR_AE, sink=Collected())
    assert result.reason_code is None and len(result.priors) == 2
    assert result.sources_tried == ("down", "archive")


def test_a_failing_sink_is_reported_as_store_failed(archive: Archive) -> None:
    def full_disk(fetched: FetchedInstance) -> None:
        raise OSError(28, "No space left on device")

    result = fetch_priors(archive.current, sources=[archive_source("dicom-get", archive)], rule=CXR,
                          time_limit_seconds=30, our_ae_title=OUR_AE, sink=full_disk)
    assert not result.available and result.reason_code == "priors.store_failed"


def test_no_patient_data_in_the_logs(archive: Archive, report_book: DatabaseReportBook,
                                     caplog: pytest.LogCaptureFixture, silent_port: int) -> None:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # as radassist.logging keeps it
    caplog.set_level(logging.DEBUG, logger="radassist")
    for kind in KINDS:
        fetch_priors(archive.current, sources=[archive_source(kind, archive)], rule=CXR, time_limit_seconds=30,
                     our_ae_title=OUR_AE, sink=Collected(), reports=report_book)
    fetch_priors(archive.current, sources=[source("dicom-get", port=silent_port)], rule=CXR, time_limit_seconds=1,
                 our_ae_title=OUR_AE, sink=Collected())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "priors of study" in text
    for value in (*SENTINEL_VALUES, PRIOR_B_ACCESSION, RIS_REPORT_B, REPORT_A_IMPRESSION):
        assert value not in text


def test_a_caller_the_archive_does_not_know_is_refused(archive: Archive) -> None:
    stranger = DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=archive.dicom_port,
                                calling_ae_title="STRANGER")
    result = fetch_priors(archive.current, sources=[stranger], rule=CXR, time_limit_seconds=30, our_ae_title=OUR_AE,
                          sink=Collected())
    assert not result.available and result.reason_code == "priors.refused"
    assert result.reason == "The prior source refused the request."


def test_priors_for_takes_sources_rule_and_limits_from_the_settings(archive: Archive) -> None:
    sources = [{"kind": "dicomweb", "name": "vna", "url": f"{archive.url}/dicom-web"}]
    settings = load_settings(environ={"RADASSIST_PRIOR_SOURCES": json.dumps(sources),
                                      "RADASSIST_DICOM_AE_TITLE": OUR_AE})
    settings = settings.model_copy(update={"priors": PriorsSettings(
        max_instances=1, rules=(PriorRule(profile="cxr", most_recent=1), PriorRule(most_recent=0)))})
    sink = Collected()
    result = priors_for(settings, archive.current, profile="cxr", sink=sink)
    # No views in the rule: the first series in order (PA) and, at most one image, nothing more.
    assert [p.study_instance_uid for p in result.priors] == [archive.history.prior_a[0].StudyInstanceUID]
    assert _uids(sink.datasets()) == {str(archive.history.prior_a[0].SOPInstanceUID)}
    assert priors_for(settings, archive.current, profile="ct_head").reason_code == "priors.disabled"


def test_a_move_the_archive_cannot_carry_out_gives_retrieve_failed(archive: Archive) -> None:
    # Orthanc does not know where "NOWHERE" is: each prior is found, none can be moved.
    nowhere = DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=archive.dicom_port,
                               retrieve="move", move_destination="NOWHERE")
    result = fetch_priors(archive.current, sources=[nowhere], rule=CXR, time_limit_seconds=30, our_ae_title=OUR_AE,
                          sink=Collected())
    assert not result.available and result.reason_code == "priors.retrieve_failed"
    assert result.reason == "An earlier study was found but its images could not be fetched."


@pytest.mark.parametrize("kind", ("dicom-get", "dicomweb"))
def test_a_silent_source_times_out_by_its_own_step_timeout(kind: str, archive: Archive, silent_port: int) -> None:
    result = fetch_priors(archive.current, sources=[source(kind, port=silent_port, timeout_seconds=1)], rule=CXR,
                          time_limit_seconds=60, our_ae_title=OUR_AE, sink=Collected())
    assert result.reason_code == "priors.timeout" and result.elapsed_seconds < 30
