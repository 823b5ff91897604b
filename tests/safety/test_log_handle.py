"""The study handle in the log context where an inbound HL7 message maps to a received study, and
never a database id: the same handle the listener and the workers log."""

from __future__ import annotations

import logging

import pytest

from radassist.config import Hl7Settings, Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Study
from radassist.identifiers import accession_hash, study_handle
from radassist.logging import ContextFilter, log_context
from radassist.ris.receive import handle_message
from radassist.states import StudyState
from tests.hl7.test_inbound import ACCESSION, orm, oru_final

STUDY_UID = "1.2.826.0.1.3680043.8.498.2121"


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> object:
    handler = Kept()
    logger = logging.getLogger("radassist")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_orders_and_reports_for_a_received_study_are_logged_with_its_handle(migrated_settings: Settings,
                                                                           kept: Kept) -> None:
    sessions = make_sessionmaker(migrated_settings)
    with sessions.begin() as s:
        s.add(Study(study_instance_uid=STUDY_UID, state=StudyState.COMPLETE, modality="CT",
                    accession_number_hash=accession_hash(ACCESSION)))
    hl7 = Hl7Settings(accession_field="OBR-18")
    assert handle_message(sessions, orm(), hl7).ack_code.value == "AA"
    assert handle_message(sessions, oru_final(), hl7).ack_code.value == "AA"
    sessions.kw["bind"].dispose()
    stored = [r for r in kept.records if "for a received study is stored" in r.getMessage()]
    assert [r.study for r in stored] == [study_handle(STUDY_UID)] * 2  # type: ignore[attr-defined]
    assert all(ACCESSION not in r.getMessage() for r in kept.records)


def test_the_log_context_names_a_study_by_its_handle_only() -> None:
    record = logging.LogRecord("radassist.x", logging.INFO, __file__, 1, "m", None, None)
    with log_context(job_id="j", study=study_handle(STUDY_UID)):
        ContextFilter().filter(record)
    assert (record.job_id, record.study) == ("j", study_handle(STUDY_UID))  # type: ignore[attr-defined]
    ContextFilter().filter(record)
    assert record.study == "-"  # type: ignore[attr-defined]
