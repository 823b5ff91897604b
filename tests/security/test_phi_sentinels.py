"""Patient data goes to the PACS and the RIS, and nowhere else: the whole service (``radassist run``
with the tiny model, dcmtk storescu in, dcmtk storescp as PACS, an MLLP RIS that answers AE once)
takes a study whose patient fields all hold sentinels, at DEBUG log level; once it is delivered,
every log line, the Prometheus output, the database and the web API's answers (errors included)
are searched for the sentinels: none may appear.  The SR and the ORU must carry them (which shows
the sentinels really went through the pipeline).

tests/e2e/test_pipeline.py checks the log for four sentinels at INFO; this adds the other patient
fields, DEBUG, /metrics, the database and the API.
"""

from __future__ import annotations

import re
from pathlib import Path

import hl7
import pydicom
import pytest
import sqlalchemy as sa

from tests.conftest import wait_until
from tests.e2e.test_pipeline import make_ct_study, send, write_config
from tests.peers import mllp_ris, storescp

pytestmark = pytest.mark.e2e

#: Each patient field of the study and its sentinel (unique strings no code path would make up).
PATIENT = {
    "PatientName": "ZZSENTINELNAME^QQ",
    "PatientID": "PIDSENTINEL991",
    "PatientBirthDate": "19010203",
    "AccessionNumber": "ACCSENTINEL77",
    "IssuerOfPatientID": "ISSUERSENTINEL3",
    "OtherPatientIDs": "OPIDSENTINEL55",
    "OtherPatientNames": "YYSENTINELOTHER^PP",
    "PatientAddress": "ADDRSENTINEL 1 Main St",
    "PatientTelephoneNumbers": "5550199SENTINEL",
    "ReferringPhysicianName": "REFSENTINEL^DR",
    "InstitutionName": "INSTSENTINEL Hospital",
    "RequestingPhysician": "REQSENTINEL^DR",
    "AdmissionID": "ADMSENTINEL42",
}
#: What is searched for: each value, its parts, and the birth date as people write it.
NEEDLES = sorted(
    {part for value in PATIENT.values() for part in re.split(r"[\^ ]", value) if "SENTINEL" in part}
    | {"SENTINEL", "19010203", "1901-02-03", "03.02.1901", "02/03/1901"}
)


def _sentinel_study(folder: Path) -> tuple[str, list[Path]]:
    study_uid, files = make_ct_study(folder)
    for path in files:
        ds = pydicom.dcmread(path)
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.save_as(path, enforce_file_format=True)
    return study_uid, files


def _hits(label: str, text: str) -> list[str]:
    return [f"{label}: {needle!r}" for needle in NEEDLES if needle.lower() in text.lower()]


def _database_dump(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(f"{t.name}: {conn.execute(sa.select(t)).all()!r}" for t in metadata.sorted_tables)
    finally:
        engine.dispose()


def test_patient_data_reaches_pacs_and_ris_and_nothing_else(tmp_path: Path, tiny_model: Path, run_service) -> None:
    study_uid, files = _sentinel_study(tmp_path / "study")
    data = tmp_path / "data"
    with storescp(tmp_path / "pacs") as pacs, mllp_ris(lambda _m, seen: "AE" if seen == 1 else "AA") as ris:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=data, model=str(tiny_model), pacs=pacs, ris=ris)
        config.write_text(config.read_text() + '[logging]\nlevel = "DEBUG"\n')
        service = run_service(config, *ports)
        send(service.dicom_port, *files)

        def delivered() -> dict | None:
            studies = service.studies()
            assert all(s["state"] != "failed" for s in studies), studies
            return studies[0] if studies and studies[0]["state"] == "done" else None

        study = wait_until(delivered, timeout=180, interval=1)

        # The PACS and the RIS got the patient: the sentinels were in the pipeline.
        (sr,) = [pydicom.dcmread(p) for p in pacs.received()]
        assert str(sr.PatientName) == PATIENT["PatientName"] and sr.PatientID == PATIENT["PatientID"]
        assert sr.StudyInstanceUID == study_uid
        oru = hl7.parse(ris.messages[-1])
        assert PATIENT["PatientID"] in str(oru.segment("PID")) and PATIENT["AccessionNumber"] in str(oru)
        assert "AE" in ris.acks  # the error path (a retry) ran too

        # Everything the web app says about the study, including its errors, and the metrics.
        answers = {
            "/api/studies": service.get("/api/studies"),
            "/api/studies?accession=": service.get(f"/api/studies?accession={PATIENT['AccessionNumber']}"),
            "/api/studies/{id}": service.get(f"/api/studies/{study['id']}"),
            "/": service.get("/"),
            "/studies/{id}": service.get(f"/studies/{study['id']}"),
            "/system": service.get("/system"),
            "/api/system": service.get("/api/system"),
            "/api/audit": service.get("/api/audit"),
            "/metrics": service.get("/metrics"),
            "404": service.get("/api/studies/00000000-0000-0000-0000-000000000000"),
            "422": service.get(f"/api/studies?accession={PATIENT['AccessionNumber'] * 6}"),
            "422 path": service.get(f"/api/studies/{PATIENT['PatientID']}"),
            "thumbnail 404": service.get(f"/studies/{study['id']}/instances/{PATIENT['PatientID']}/thumbnail.png"),
        }
        statuses = {name: r.status_code for name, r in answers.items()}
        assert statuses == {**{n: 200 for n in answers}, "404": 404, "422": 422, "422 path": 422,
                            "thumbnail 404": 404}
        assert answers["/api/studies?accession="].json()["total"] == 1  # found by the accession's hash
        assert "radassist_studies" in answers["/metrics"].text
        hits = [h for name, r in answers.items() if "image/png" not in r.headers.get("content-type", "")
                for h in _hits(name, r.text)]

    # Every line every process wrote (the run command's children share its stdout and stderr),
    # any log file in the data folder, and the database.
    log = service.log.read_text(errors="replace")
    assert "draft stored" in log and " DEBUG " in log  # the log is the whole story, at DEBUG
    hits += _hits("service log", log)
    for extra in [p for p in data.rglob("*") if p.is_file() and p.suffix in (".log", ".txt", ".json")]:
        hits += _hits(str(extra.relative_to(tmp_path)), extra.read_text(errors="replace"))
    hits += _hits("database", _database_dump(f"sqlite:///{data / 'radassist.sqlite3'}"))
    assert hits == []
