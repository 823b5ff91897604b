"""The prior report: the RIS's signed report by accession, else the newest verified SR that is not ours."""

from __future__ import annotations

import datetime as dt
import uuid

import pydicom
from sqlalchemy.orm import Session

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Job, Report, Study
from radassist.identifiers import accession_hash
from radassist.priors import DatabaseReportBook, report_from_sr
from radassist.priors.reports import choose_sr_report, is_our_draft, sr_text
from tests.priors.factories import make_cxr_study, make_our_draft, make_radiologist_sr, mark_verified

PRIOR = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))


def _verified(impression: str, at: dt.datetime) -> pydicom.Dataset:
    return make_radiologist_sr(PRIOR, findings="Lungs clear.", impression=impression, verified_at=at)


def test_the_text_keeps_headings_and_items_in_document_order() -> None:
    sr = _verified("No acute disease.", dt.datetime(2023, 1, 11, 8, 0))
    assert sr_text(sr) == "Findings:\nLungs clear.\nImpressions:\nNo acute disease."


def test_only_a_verified_sr_is_a_report() -> None:
    verified = _verified("Verified impression.", dt.datetime(2023, 1, 11, 8, 0))
    report = report_from_sr(verified)
    assert report is not None and report.origin == "sr" and report.status == "VERIFIED"
    assert report.sop_instance_uid == verified.SOPInstanceUID and "Verified impression." in report.text
    unverified = make_radiologist_sr(PRIOR, findings="Lungs clear.", impression="Preliminary.", verified=False)
    assert unverified.VerificationFlag == "UNVERIFIED" and report_from_sr(unverified) is None
    assert report_from_sr(PRIOR[0]) is None  # an image is no report


def test_our_draft_is_recognised_by_each_of_its_marks() -> None:
    draft = mark_verified(make_our_draft(PRIOR, impression="Our impression."), dt.datetime(2023, 2, 1))
    assert is_our_draft(draft) and report_from_sr(draft) is None

    # A PACS that rewrote equipment and series description: the notice in the text still tells.
    rewritten = mark_verified(make_our_draft(PRIOR, impression="Our impression."), dt.datetime(2023, 2, 1))
    rewritten.Manufacturer = "Hospital Reporting Inc"
    rewritten.SeriesDescription = "Report"
    assert is_our_draft(rewritten)

    # A radiologist's SR that quotes nothing of ours, but whose UID is one we generated.
    ours_by_uid = _verified("Signed.", dt.datetime(2023, 1, 11))
    assert not is_our_draft(ours_by_uid)
    assert is_our_draft(ours_by_uid, {str(ours_by_uid.SOPInstanceUID)})
    assert report_from_sr(ours_by_uid, {str(ours_by_uid.SOPInstanceUID)}) is None

    by_manufacturer = _verified("Signed.", dt.datetime(2023, 1, 11))
    by_manufacturer.Manufacturer = "RadAssist"
    by_series = _verified("Signed.", dt.datetime(2023, 1, 11))
    by_series.SeriesDescription = "AI DRAFT - NOT VERIFIED"
    assert is_our_draft(by_manufacturer) and is_our_draft(by_series)


def test_the_most_recently_verified_qualifying_sr_is_chosen() -> None:
    older = _verified("Older.", dt.datetime(2023, 1, 11, 8, 0))
    newer = _verified("Newer.", dt.datetime(2023, 1, 12, 8, 0))
    ours = mark_verified(make_our_draft(PRIOR, impression="Ours, newest."), dt.datetime(2023, 3, 1))
    report = choose_sr_report([older, ours, newer])
    assert report is not None and "Newer." in report.text
    report = choose_sr_report([older, ours, newer], {str(newer.SOPInstanceUID)})
    assert report is not None and "Older." in report.text
    assert choose_sr_report([ours]) is None


def test_the_report_book_reads_the_ris_report_and_our_sr_uids(migrated_settings: Settings) -> None:
    sessions = make_sessionmaker(migrated_settings)
    ours = "2.25.12345678901234567890"
    with sessions.begin() as session:
        assert isinstance(session, Session)
        study = Study(study_instance_uid="1.2.3.4")
        session.add(study)
        session.flush()
        session.add(Job(study_id=study.id, model_name="tiny", sr_sop_instance_uid=ours))
        session.add(Job(study_id=study.id, model_name="tiny", sr_sop_instance_uid=None))
        key = accession_hash("ACC-1")
        assert key is not None
        session.add(Report(accession_number_hash=key, status="F", text="Final text.", control_id="c1",
                           received_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)))
        session.add(Report(accession_number_hash=key, status="C", text="Corrected text.", control_id="c2",
                           received_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)))
        session.add(Report(accession_number_hash=key, status="P", text="Preliminary text.", control_id="c3",
                           received_at=dt.datetime(2024, 1, 3, tzinfo=dt.UTC)))
    book = DatabaseReportBook(sessions)
    report = book.final_report("ACC-1")
    assert report is not None and report.origin == "ris" and report.status == "C"
    assert report.text == "Corrected text."
    assert book.final_report("ACC-2") is None and book.final_report("") is None
    assert book.our_sr_uids([ours, "1.2.3", ""]) == frozenset({ours})
    assert book.our_sr_uids([]) == frozenset()
    assert str(uuid.uuid4()) not in book.our_sr_uids([str(uuid.uuid4())])
