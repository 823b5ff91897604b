"""An admin resolves a study held for an identity conflict from the study page's API: the kept
patient's instances stay, the others' rows and files go, and the study is drafted as any other."""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, Instance, Series, Study
from radassist.states import StudyState
from radassist.store.instances import InstanceStore
from radassist.web.app import create_app
from tests.web.support import add_user, bearer

STUDY_UID = "1.2.826.0.1.3680043.8.498.4401"


def _held_study(settings: Settings) -> tuple[uuid.UUID, uuid.UUID, str, str]:
    """A held study with two instances naming patients "aaaa" and "bbbb"; their files on disk."""
    store = InstanceStore(settings.storage.instances_dir)
    first = store.write(b"first patient's bytes", STUDY_UID, STUDY_UID + ".1", STUDY_UID + ".1.1")
    second = store.write(b"second patient's bytes", STUDY_UID, STUDY_UID + ".1", STUDY_UID + ".1.2")
    now = utcnow()
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as s:
            study = Study(id=uuid.uuid4(), study_instance_uid=STUDY_UID, modality="CR", called_ae_title="RADASSIST",
                          state=StudyState.IDENTITY_CONFLICT, instance_count=2, patient_key="a" * 32,
                          first_received_at=now, last_received_at=now)
            s.add(study)
            s.flush()
            series = Series(study_id=study.id, series_instance_uid=STUDY_UID + ".1", modality="CR",
                            series_description="PA", instance_count=2)
            s.add(series)
            s.flush()
            kept = Instance(series_id=series.id, study_id=study.id, sop_instance_uid=STUDY_UID + ".1.1",
                            sop_class_uid="1.2.840.10008.5.1.4.1.1.1", transfer_syntax_uid="1.2.840.10008.1.2.1",
                            path=first.relpath, size_bytes=first.size_bytes, patient_key="a" * 32,
                            received_at=now)
            other = Instance(series_id=series.id, study_id=study.id, sop_instance_uid=STUDY_UID + ".1.2",
                             sop_class_uid="1.2.840.10008.5.1.4.1.1.1", transfer_syntax_uid="1.2.840.10008.1.2.1",
                             path=second.relpath, size_bytes=second.size_bytes, patient_key="b" * 32,
                             received_at=now + dt.timedelta(seconds=1))
            s.add_all([kept, other])
            s.flush()
            return study.id, kept.id, first.relpath, second.relpath
    finally:
        sessions.kw["bind"].dispose()


def test_admin_keeps_one_patient_and_the_others_files_go(migrated_settings: Settings) -> None:
    settings = migrated_settings
    study_id, kept_id, kept_path, other_path = _held_study(settings)
    store = InstanceStore(settings.storage.instances_dir)
    admin = add_user(settings, "admin1", "admin")
    viewer = add_user(settings, "viewer1", "viewer")
    with TestClient(create_app(settings)) as client:
        view = client.get(f"/api/studies/{study_id}", headers=bearer(admin)).json()
        assert view["state"] == "identity_conflict"
        assert [(g["label"], g["instances"]) for g in view["patient_groups"]] == [("A", 1), ("B", 1)]
        assert view["patient_groups"][0]["instance_id"] == str(kept_id)
        page = client.get(f"/studies/{study_id}", headers=bearer(admin)).text
        assert "name different patients" in page and "Keep A, remove the others" in page

        form = {"keep_instance_id": str(kept_id), "resolution": "drop_others"}
        refused = client.post(f"/api/studies/{study_id}/resolve-identity", data=form, headers=bearer(viewer))
        assert refused.status_code == 403
        done = client.post(f"/api/studies/{study_id}/resolve-identity", data=form, headers=bearer(admin))
        assert done.status_code == 200 and done.json()["ok"], done.text
        again = client.post(f"/api/studies/{study_id}/resolve-identity", data=form, headers=bearer(admin))
        assert again.status_code == 409  # no longer held

    assert store.path(kept_path).exists() and not store.path(other_path).exists()
    sessions = make_sessionmaker(settings)
    try:
        with sessions() as s:
            study = s.get(Study, study_id)
            assert study is not None and study.state is StudyState.RECEIVING and study.instance_count == 1
            assert s.scalars(select(Instance.id).where(Instance.study_id == study_id)).all() == [kept_id]
            outcomes = s.scalars(select(AuditEntry.outcome).where(AuditEntry.action == "resolve_identity")
                                 .order_by(AuditEntry.id)).all()
            assert outcomes == ["done", "refused"]
    finally:
        sessions.kw["bind"].dispose()
