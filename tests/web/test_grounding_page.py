"""The study page of a grounded draft: each box drawn (SVG) over the frame it lies on, numbered and
labelled with its finding, dropped boxes listed; the frame thumbnails it draws on; the JSON API."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radassist.config import Settings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Draft, Instance, Job, Series, Study
from radassist.grounding import MappedFinding, PictureGeometry, Resize, Size, SourceBox
from radassist.grounding.boxes import GroundingWarning
from radassist.grounding.record import grounding_record
from radassist.states import JobState, StudyState
from radassist.web.app import create_app
from tests.grounding.marked import bright_box, marked_multiframe
from tests.web.support import add_user, bearer

MARKER = (60, 10, 80, 30)
FINDING = "Dense focus <in> the right upper zone"


@dataclass
class Grounded:
    study: uuid.UUID
    clip_uid: str


def _record(uid: str) -> dict[str, Any]:
    pictures = [PictureGeometry(uid, frame, 112, 56, index, (Resize(Size(112, 56), Size(56, 28)),))
                for index, frame in enumerate((1, 3, 4))]
    findings = [MappedFinding("No effusion"), MappedFinding(FINDING, (SourceBox(uid, 3, *map(float, MARKER)),))]
    return grounding_record("qwen2_5_vl", findings, [GroundingWarning("grounding.box.arity", "3 coordinates", None, 1)],
                            pictures)


def _seed(settings: Settings, tmp_path: Path, record: dict[str, Any] | None) -> Grounded:
    clip = marked_multiframe(112, 56, frames=4, marked_frame=3, marker=MARKER)
    folder = settings.storage.instances_dir / "g"
    folder.mkdir(parents=True, exist_ok=True)
    clip.save_as(folder / "clip.dcm", enforce_file_format=True)
    uid = str(clip.SOPInstanceUID)
    now = utcnow()
    sessions = make_sessionmaker(settings)
    try:
        with sessions.begin() as s:
            study = Study(study_instance_uid=str(clip.StudyInstanceUID), state=StudyState.COMPLETE, modality="OT",
                          instance_count=1, first_received_at=now, last_received_at=now, completed_at=now)
            s.add(study)
            s.flush()
            series = Series(study_id=study.id, series_instance_uid=str(clip.SeriesInstanceUID), instance_count=1)
            s.add(series)
            s.flush()
            s.add(Instance(series_id=series.id, study_id=study.id, sop_instance_uid=uid,
                           sop_class_uid=str(clip.SOPClassUID), transfer_syntax_uid="1.2.840.10008.1.2.1",
                           path="g/clip.dcm", size_bytes=1))
            job = Job(study_id=study.id, state=JobState.DELIVERING, model_name="qwen", attempts=1, created_at=now,
                      drafted_at=now)
            s.add(job)
            s.flush()
            s.add(Draft(job_id=job.id, findings=f"{FINDING}.", impression="Focus.", raw_text="x", model_name="qwen",
                        prompt="p", prompt_version="2",
                        generation={"source_sop_instance_uids": [uid], "grounding": record or _record(uid)}))
            return Grounded(study.id, uid)
    finally:
        sessions.kw["bind"].dispose()


@pytest.fixture
def viewer(migrated_settings: Settings) -> Iterator[TestClient]:
    token = add_user(migrated_settings, "viewer1", "viewer")
    with TestClient(create_app(migrated_settings), headers=bearer(token)) as client:
        yield client


def test_the_page_draws_each_box_over_its_frame(migrated_settings: Settings, tmp_path: Path,
                                                viewer: TestClient) -> None:
    world = _seed(migrated_settings, tmp_path, None)
    page = viewer.get(f"/studies/{world.study}").text
    assert "Findings on the images (AI, not verified)" in page
    # Only the frame with a box is drawn, its thumbnail under an SVG whose view box is the frame.
    frame = f"/studies/{world.study}/instances/{world.clip_uid}/frames/3/thumbnail.png"
    assert frame in page and "/frames/1/thumbnail.png" not in page
    assert 'viewBox="0 0 112 56"' in page
    rect = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', page)
    assert rect is not None and tuple(float(v) for v in rect.groups()) == (60.0, 10.0, 20.0, 20.0)
    # Numbered as the measurement report numbers it (the first finding with a box is "AI finding 1").
    assert '<g class="box" data-finding="1">' in page
    assert '<li value="1">Dense focus &lt;in&gt; the right upper zone</li>' in page
    assert "<in>" not in page  # the model's words are escaped, never markup
    assert "1 box(es) the model wrote were dropped" in page
    assert "grounding.box.arity: 3 coordinates (box 2)" in page

    detail = viewer.get(f"/api/studies/{world.study}").json()["grounding"]
    assert detail["grammar"] == "qwen2_5_vl" and detail["readable"] is True
    assert [(p["frame_number"], len(p["boxes"])) for p in detail["pictures"]] == [(1, 0), (3, 1), (4, 0)]
    assert detail["findings"] == [{"number": 1, "text": FINDING, "boxes": 1}]


def test_frame_thumbnails_show_the_frame_asked_for(migrated_settings: Settings, tmp_path: Path,
                                                  viewer: TestClient) -> None:
    world = _seed(migrated_settings, tmp_path, None)
    base = f"/studies/{world.study}/instances/{world.clip_uid}/frames"
    third = viewer.get(f"{base}/3/thumbnail.png")
    assert third.status_code == 200 and third.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(third.content)) as image:
        assert image.size == (112, 56)  # smaller than a thumbnail: kept at its own size
        assert bright_box(image.convert("RGB")) == MARKER  # the box's place on the frame
    with Image.open(io.BytesIO(viewer.get(f"{base}/1/thumbnail.png").content)) as image, \
            pytest.raises(AssertionError, match="no bright pixel"):
        bright_box(image.convert("RGB"))
    assert viewer.get(f"{base}/5/thumbnail.png").status_code == 404
    assert viewer.get(f"{base}/0/thumbnail.png").status_code == 422
    assert viewer.get(f"/studies/{world.study}/instances/1.2.3/frames/1/thumbnail.png").status_code == 404
    assert viewer.get(f"/studies/{uuid.uuid4()}/instances/{world.clip_uid}/frames/1/thumbnail.png").status_code == 404


def test_a_record_that_cannot_be_read_shows_no_box(migrated_settings: Settings, tmp_path: Path,
                                                   viewer: TestClient) -> None:
    broken = {"version": 1, "grammar": "qwen2_5_vl", "pictures": [{"picture": "first"}], "findings": [],
              "warnings": []}
    world = _seed(migrated_settings, tmp_path, broken)
    page = viewer.get(f"/studies/{world.study}").text
    assert "The boxes of this draft could not be read; none are shown." in page
    assert "<svg" not in page
    assert viewer.get(f"/api/studies/{world.study}").json()["grounding"]["readable"] is False
