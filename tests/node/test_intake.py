"""Intake pieces below the network: the instance store, the header reader, racing recorders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import config, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from sqlalchemy import func, select

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Event, Instance, Series, Study
from radassist.errors import RejectedInput
from radassist.identifiers import is_valid_uid, uid_value
from radassist.intake.header import parse_header, read_header
from radassist.intake.record import record_instance
from radassist.store.instances import InstanceStore, StoredFile
from tests.unit.test_completion import TEST_KEY, header

NOW = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


# --- InstanceStore ---------------------------------------------------------------------------


def test_store_paths_are_hashes_not_uids(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    stored = store.write(b"DICM-bytes", "../../etc", "1.2/..", "passwd")
    assert ".." not in stored.relpath and "etc" not in stored.relpath
    assert store.path(stored.relpath).read_bytes() == b"DICM-bytes"
    assert store.path(stored.relpath).is_relative_to(tmp_path.resolve())
    assert stored.size_bytes == 10 and not stored.replaced


@pytest.mark.parametrize("relpath", ["../outside.dcm", "/etc/passwd", "a/../../b", ""])
def test_store_refuses_paths_leaving_the_root(tmp_path: Path, relpath: str) -> None:
    with pytest.raises(ValueError, match="inside the store"):
        InstanceStore(tmp_path).path(relpath)


# --- read_header -----------------------------------------------------------------------------


def _dataset(**values: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4.5"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.AccessionNumber = "SENTINEL-ACC"
    ds.PatientName = "SENTINEL^NAME"
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


def test_header_reads_the_persisted_fields() -> None:
    got = read_header(_dataset(Modality="CR", SeriesNumber="3", StudyDescription="CHEST"))
    assert got.sop_instance_uid == "1.2.3.4.5" and got.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert got.modality == "CR" and got.series_number == 3 and got.study_description == "CHEST"
    assert got.accession_number == "SENTINEL-ACC"
    assert "SENTINEL" not in repr(got)


@pytest.mark.parametrize(
    "keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"]
)
def test_header_rejects_missing_uids(keyword: str) -> None:
    ds = _dataset()
    delattr(ds, keyword)
    with pytest.raises(RejectedInput) as info:
        read_header(ds)
    assert info.value.code == "dicom.missing_uid"
    assert "SENTINEL" not in str(info.value)


def test_header_rejects_a_malformed_uid() -> None:
    ds = _dataset()
    ds["StudyInstanceUID"] = DataElement(0x0020000D, "UI", "1.2.abc/../x", validation_mode=config.IGNORE)
    with pytest.raises(RejectedInput) as info:
        read_header(ds)
    assert info.value.code == "dicom.invalid_uid"


@pytest.mark.parametrize(
    ("value", "uid"),
    [
        ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1"),
        ("0.1.0", "0.1.0"),
        ("1.2.3\x00", "1.2.3"),  # the standard's padding
        ("1.2.3 ", "1.2.3"),  # a space pad, common practice
        ("1." + "2" * 62, "1." + "2" * 62),  # 64 characters
        ("1.2.3\n", None),  # today's split study: "1.2.3" and "1.2.3\n" would be two studies
        ("1.2.3\r\n", None),
        ("1.2.03", None),  # leading zero in a component
        ("01.2", None),
        ("1..2", None),
        ("1.2.", None),
        (".1.2", None),
        ("1.2.3a", None),
        (" 1.2.3", None),
        ("1." + "2" * 63, None),  # 65 characters
        ("1.2\\1.3", None),  # two values
    ],
)
def test_uids_follow_ps3_5_exactly(value: str, uid: str | None) -> None:
    assert is_valid_uid(value) is (uid == value)
    if uid is None:
        with pytest.raises(ValueError):
            uid_value(value)
        ds = _dataset()
        encoded = _encoded(ds, study_uid=value)
        for read in (lambda: parse_header(encoded, ds.file_meta.TransferSyntaxUID),  # the listener's walk
                     lambda: read_header(dcmread(BytesIO(encoded), stop_before_pixels=True))):  # pydicom's
            with pytest.raises(RejectedInput) as info:
                read()
            assert info.value.code == "dicom.invalid_uid"
    else:
        assert uid_value(value) == uid


def _encoded(ds: Dataset, study_uid: str | None = None) -> bytes:
    """The data set as a sender puts it on the wire (Part 10 stream, values as they are); a
    ``study_uid`` is put in byte for byte (pydicom would strip the whitespace we test)."""
    buffer = BytesIO()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    wanted = b""
    with config.disable_value_validation():
        if study_uid is not None:
            wanted = study_uid.encode("latin-1") + b"\x00" * (len(study_uid) % 2)
            ds.pop("StudyInstanceUID", None)  # an element keeps the validation mode it was made with
            ds.StudyInstanceUID = "1." + "9" * (len(wanted) - 2)  # a stand-in of the same length
        ds.save_as(buffer, enforce_file_format=True)
    encoded = buffer.getvalue()
    if study_uid is not None:
        stand_in = str(ds.StudyInstanceUID).encode("ascii")
        assert encoded.count(stand_in) == 1
        encoded = encoded.replace(stand_in, wanted)
    return encoded


def test_the_header_carries_no_patient_value() -> None:
    """Who the patient is reaches the recorder as a digest only; the same person gives the same one."""
    got = read_header(_dataset(PatientID="PSENTINEL-ID", PatientBirthDate="19600101"))
    again = parse_header(_encoded(_dataset(PatientID="PSENTINEL-ID ", PatientBirthDate="19600101")),
                         "1.2.840.10008.1.2.1")
    other = read_header(_dataset(PatientID="PSENTINEL-ID2", PatientBirthDate="19600101"))
    assert got.patient_digest == again.patient_digest != other.patient_digest
    assert "PSENTINEL" not in str(dataclasses.asdict(got)) and "19600101" not in str(dataclasses.asdict(got))


# --- record_instance under concurrency -------------------------------------------------------


def test_racing_recorders_of_one_new_study(migrated_settings: Settings) -> None:
    """Eight threads record instances of the same new study and series at once (unique-UID races)."""
    factory = make_sessionmaker(migrated_settings)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for k in range(3):
                with factory() as session:
                    sop = f"1.9.9.{n}.{k}"
                    record_instance(
                        session,
                        header("1.9.9", sop),
                        StoredFile(f"x/{sop}", 5),
                        calling_ae="MOD",
                        called_ae="RADASSIST",
                        now=NOW,
                        identity_key=TEST_KEY,
                    )
                    session.commit()
            # and a re-send of one of its own
            with factory() as session:
                sop = f"1.9.9.{n}.0"
                assert not record_instance(
                    session,
                    header("1.9.9", sop),
                    StoredFile(f"x/{sop}", 5),
                    calling_ae="MOD",
                    called_ae="RADASSIST",
                    now=NOW,
                    identity_key=TEST_KEY,
                )
                session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not errors, errors
        with factory() as session:
            study = session.scalars(select(Study)).one()
            assert study.instance_count == 24
            assert session.scalars(select(Series)).one().instance_count == 24
            assert session.scalar(select(func.count()).select_from(Instance)) == 24
            received = session.scalar(
                select(func.count()).select_from(Event).where(Event.tag == "study:instance:received")
            )
            assert received == 32
    finally:
        factory.kw["bind"].dispose()
