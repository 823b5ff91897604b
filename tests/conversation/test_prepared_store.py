"""The kept inputs of a drafted job: the same pictures back, owner-only files, whole or absent, removed
by retention with the study's other files."""

from __future__ import annotations

import datetime as dt
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import PromptProfileSettings, Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.retention.run import DiskUsage, run_retention
from radassist.store.prepared import MANIFEST, FilePreparedStore, encode, keep, prepared_store
from tests.prepared_store_helpers import add_done_job


def _study() -> PreparedStudy:
    rng = np.random.default_rng(7)
    images = (Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)),
              Image.fromarray(rng.integers(0, 255, (64, 40, 3), dtype=np.uint8)))
    return PreparedStudy(images=images, context=ClinicalContext(modality="CR", body_part="chest", age="64 years",
                                                                sex="female", indication="Cough"),
                         source_sop_instance_uids=("1.2.3.4", "1.2.3.5"), notes=("1 unreadable file(s) skipped",),
                         labels=("PA", "LL"), series_chosen=None, lateralities=frozenset({"R"}))


PROFILE = PromptProfileSettings(name="site_cxr", modalities=("CR",), instruction="Comment on lines.")


def test_what_is_kept_comes_back_the_same(tmp_path: Path) -> None:
    store = FilePreparedStore(tmp_path / "prepared")
    job_id = uuid.uuid4()
    study = _study()
    store.save(job_id, study, PROFILE)
    kept = store.load(job_id)
    assert kept is not None and kept.profile == PROFILE
    assert [np.asarray(i).tolist() for i in kept.study.images] == [np.asarray(i).tolist() for i in study.images]
    assert kept.study.labels == study.labels and kept.study.context == study.context
    assert kept.study.source_sop_instance_uids == study.source_sop_instance_uids
    assert kept.study.notes == study.notes and kept.study.lateralities == study.lateralities
    assert store.picture(job_id, 1) == encode(study, PROFILE)["picture-001.png"]
    assert store.picture(job_id, 2) is None and store.load(uuid.uuid4()) is None


def test_files_are_owner_only_and_a_set_without_its_manifest_is_not_there(tmp_path: Path) -> None:
    store = FilePreparedStore(tmp_path / "prepared")
    job_id = uuid.uuid4()
    store.save(job_id, _study(), None)
    folder = store.folder(job_id)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, "picture-000.png", "picture-001.png"]
    (folder / MANIFEST).unlink()  # as if the save had stopped before its last write
    assert store.load(job_id) is None and store.picture(job_id, 0) is None
    files, size = store.remove(job_id)
    assert files == 2 and size > 0 and not folder.exists()
    assert store.remove(job_id) == (0, 0)


def test_keeping_never_fails_the_draft(tmp_path: Path) -> None:
    blocked = tmp_path / "prepared"
    blocked.write_text("a file where the folder should be")
    assert keep(FilePreparedStore(blocked), uuid.uuid4(), _study(), None) is False
    with pytest.raises(TypeError):
        FilePreparedStore(tmp_path).folder("../escape")  # type: ignore[arg-type]


@pytest.fixture
def factory(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    made = make_sessionmaker(migrated_settings)
    yield made
    made.kw["bind"].dispose()


def test_retention_removes_the_kept_inputs_with_the_studys_files(migrated_settings: Settings,
                                                                  factory: sessionmaker[Session]) -> None:
    job_id = add_done_job(factory, utcnow() - dt.timedelta(days=30))
    store = prepared_store(migrated_settings)
    store.save(job_id, _study(), None)
    run = run_retention(factory, migrated_settings, now=utcnow(), usage=lambda: DiskUsage(10**12, 10**12))
    assert run.by_age.studies == 1 and run.by_age.files == 3  # the manifest and two pictures
    assert store.load(job_id) is None and not store.folder(job_id).exists()
