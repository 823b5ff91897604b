"""The prepared store's three backends keep a job's inputs the same way: everything the model is
shown comes back, a set is there whole or not at all, and retention removes it.

The ``s3`` backend runs against a real S3 HTTP endpoint: moto's ``moto_server`` started here as a
process, spoken to by boto3 over the network as it would speak to MinIO or AWS.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from radassist.config import PromptProfileSettings, Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.migrate import upgrade
from radassist.grounding.geometry import PictureGeometry, Resize, Size
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.priors.comparison import ComparedStudy, Comparison
from radassist.retention.run import DiskUsage, run_retention
from radassist.ris.context import OrderContext
from radassist.store.prepared import MANIFEST, BlobStore, KeptInputs, prepared_store
from tests.conftest import free_port, wait_for_port
from tests.prepared_store_helpers import add_done_job

BACKENDS = ("files", "database", "s3")
BUCKET = "radassist-test"


def _moto_server() -> str:
    found = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(found).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    return found


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    server = subprocess.Popen([_moto_server(), "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """Settings with each backend (the database one on SQLite and PostgreSQL), migrated."""
    backend = str(request.param)
    if backend != "database" and "postgresql" in database_url:
        pytest.skip("the files and s3 backends do not depend on the database")
    extra: dict[str, str] = {}
    if backend == "s3":
        extra = {"prepared_s3_endpoint_url": request.getfixturevalue("s3_endpoint"), "prepared_s3_bucket": BUCKET,
                 "prepared_s3_prefix": f"t/{uuid.uuid4().hex[:8]}/", "prepared_s3_region": "us-east-1",
                 "prepared_s3_access_key_id": "test", "prepared_s3_secret_access_key": "test"}
    made = make_settings(database_url=database_url, prepared_backend=backend, **extra)
    upgrade(made)
    return made


def _picture(seed: int, shape: tuple[int, int]) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8))


def _inputs() -> KeptInputs:
    geometry = PictureGeometry("1.2.3.4", 1, 128, 96, 0, (Resize(Size(128, 96), Size(64, 48)),))
    study = PreparedStudy(images=(_picture(1, (48, 64)), _picture(2, (64, 40))),
                          context=ClinicalContext(modality="CR", body_part="chest", age="64 years", indication="Cough"),
                          source_sop_instance_uids=("1.2.3.4", "1.2.3.5"), notes=("1 unreadable file(s) skipped",),
                          labels=("PA", "LL"), lateralities=frozenset({"R"}), geometries=(geometry,))
    prior = PreparedStudy(images=(_picture(3, (32, 32)),), context=ClinicalContext(modality="CR"),
                          source_sop_instance_uids=("1.2.9",), labels=("prior PA (2024-01-02)",))
    comparison = Comparison((ComparedStudy("1.2.8", dt.date(2024, 1, 2), "XR CHEST", ("CR",), "No change.", "ris"),),
                            None)
    order = OrderContext(accession_number_hash="abc", indication="Fever", priority="S", procedure_text="XR CHEST")
    profile = PromptProfileSettings(name="site_cxr", modalities=("CR",), instruction="Comment on lines.")
    return KeptInputs(study, profile, order=order, comparison=comparison, prior=prior)


def _pixels(images: tuple[Image.Image, ...]) -> list[list[object]]:
    return [np.asarray(i).tolist() for i in images]


def _job(settings: Settings, *, done_days_ago: float = 0.0) -> uuid.UUID:
    """A job row (the database backend's blobs belong to one); done long ago when asked."""
    maker = make_sessionmaker(settings)
    job_id = add_done_job(maker, utcnow() - dt.timedelta(days=done_days_ago))
    maker.kw["bind"].dispose()
    return job_id


def test_everything_the_model_is_shown_comes_back(settings: Settings) -> None:
    store = prepared_store(settings)
    job_id, inputs = _job(settings), _inputs()
    store.save_inputs(job_id, inputs)
    kept = store.load(job_id)
    assert kept is not None
    assert _pixels(kept.study.images) == _pixels(inputs.study.images)
    assert (kept.study.labels, kept.study.context, kept.study.notes) == (
        inputs.study.labels, inputs.study.context, inputs.study.notes)
    assert kept.study.geometries == inputs.study.geometries and kept.study.lateralities == {"R"}
    assert kept.profile == inputs.profile and kept.order == inputs.order and kept.comparison == inputs.comparison
    assert kept.prior is not None and _pixels(kept.prior.images) == _pixels(inputs.prior.images)  # type: ignore[union-attr]
    assert kept.prior.labels == ("prior PA (2024-01-02)",)
    first = store.picture(job_id, 0)
    assert first is not None and first.startswith(b"\x89PNG")
    assert store.picture(job_id, 2) is None and store.load(uuid.uuid4()) is None
    store.save(job_id, inputs.study, None)  # replaced whole: no order, no prior any more
    again = store.load(job_id)
    assert again is not None and again.order is None and again.prior is None and again.profile is None


class _Interrupted(Mapping[str, bytes]):
    """Blobs whose writing stops, as a crash would, after the first picture."""

    def __init__(self, blobs: Mapping[str, bytes]) -> None:
        self.blobs = dict(blobs)

    def __getitem__(self, name: str) -> bytes:
        return self.blobs[name]

    def __len__(self) -> int:
        return len(self.blobs)

    def __iter__(self) -> Iterator[str]:
        yield "picture-000.png"
        raise RuntimeError("crashed mid-write")


def test_a_set_is_there_whole_or_not_at_all(settings: Settings) -> None:
    from radassist.store.prepared_codec import encode_inputs

    store = prepared_store(settings)
    assert isinstance(store, BlobStore)
    job_id, inputs = _job(settings), _inputs()
    store.save_inputs(job_id, inputs)
    with pytest.raises((RuntimeError, OSError)):
        store.write_blobs(job_id, _Interrupted(encode_inputs(inputs)))
    kept = store.load(job_id)
    if settings.prepared.backend == "database":  # one transaction: the old set stands
        assert kept is not None and _pixels(kept.study.images) == _pixels(inputs.study.images)
    else:  # the manifest goes first and comes last: nothing is there
        assert kept is None and store.picture(job_id, 0) is None
    store.save_inputs(job_id, inputs)
    blobs = store.read_blobs(job_id)
    assert blobs is not None and MANIFEST in blobs and len(blobs) == 4  # two pictures, one prior picture
    removed, size = store.remove(job_id)
    assert removed == 4 and size > 0
    assert store.load(job_id) is None and store.remove(job_id) == (0, 0)


def test_retention_removes_them_with_the_studys_files(settings: Settings) -> None:
    job_id = _job(settings, done_days_ago=30)
    store = prepared_store(settings)
    store.save_inputs(job_id, _inputs())
    maker = make_sessionmaker(settings)
    run = run_retention(maker, settings, now=utcnow(), usage=lambda: DiskUsage(10**12, 10**12))
    maker.kw["bind"].dispose()
    assert run.by_age.studies == 1 and run.by_age.files == 4
    assert store.load(job_id) is None
