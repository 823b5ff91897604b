"""A grounded draft through the real drafting path: a scripted tiny Qwen2.5-VL writes a report with a
box around a marker at a known place; the draft task prepares the study, runs the model, parses its
boxes and maps them back onto the source image, and stores them with the draft.

The sizes are chosen so that every step is an exact scale or shift: the source is 560 x 280, shrunk to
112 x 56 (``image_size`` 112), optionally padded to 112 x 112, then sized by Qwen2.5-VL's processor
(``smart_resize`` with the tiny model's pixel bounds) to 56 x 28 or 56 x 56.  The box the model
writes is the marker in that picture, so the mapped box must be the marker's source pixels exactly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from radassist.config import Settings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Draft, Job
from radassist.grounding import Size
from radassist.grounding.processors import qwen2_vl_resize
from radassist.imaging import prepare_study
from radassist.states import JobState
from radassist_devtools.tiny_models import write_tiny_model
from tests.drafting.conftest import prepare
from tests.drafting.test_draft_task import add_study
from tests.grounding.marked import bright_box, marked_ct, marked_multiframe

FINDING = "Dense focus in the right upper zone"
PROSE = f"Findings: {FINDING}. The heart is normal. Impression: Right upper zone focus."
# The tiny Qwen2.5-VL processor's pixel bounds (radassist_devtools.tiny_models.qwen2_vl).
TINY_MIN_PIXELS, TINY_MAX_PIXELS = 28 * 28, 56 * 56


def grounded_report(*objects: dict[str, object]) -> str:
    """The report as Qwen2.5-VL writes a grounded one: prose, then the boxes in a JSON fence."""
    return PROSE + "\n```json\n" + json.dumps(list(objects)) + "\n```"


@dataclass(frozen=True)
class Case:
    name: str
    write: Callable[[Path], Path]
    """Writes the study's one file into a folder."""
    pad: bool
    model_box: list[int]
    """The marker as the model sees it, in pixels of its processor-sized picture."""
    image: int
    """1-based: the picture the marker is on."""
    source_box: tuple[float, float, float, float]
    frame_number: int


def _single(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "marked.dcm"
    marked_ct(560, 280, (200, 100, 300, 160)).save_as(path, enforce_file_format=True)
    return path


def _multiframe(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clip.dcm"
    marked_multiframe(112, 56, frames=4, marked_frame=3, marker=(60, 10, 80, 30)).save_as(
        path, enforce_file_format=True)
    return path


CASES = [
    # 560 x 280 -> 112 x 56 -> smart_resize 56 x 28: x10 each way.
    Case("non-square", _single, False, [20, 10, 30, 16], 1, (200.0, 100.0, 300.0, 160.0), 1),
    # 560 x 280 -> 112 x 56 -> padded 112 x 112 (28 rows above) -> 56 x 56: rows 100..160 are 128..158 padded.
    Case("resized-and-padded", _single, True, [20, 24, 30, 30], 1, (200.0, 100.0, 300.0, 160.0), 1),
    # Frames 1, 3 and 4 of the clip are shown (3 of 4); frame 3 is the second picture; 112 x 56 -> 56 x 28.
    Case("multi-frame", _multiframe, False, [30, 5, 40, 15], 2, (60.0, 10.0, 80.0, 30.0), 3),
]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One scripted Qwen2.5-VL per case: a box that lands on the marker, one with three numbers, and
    (padded case) one drawn on the padding."""
    root = tmp_path_factory.mktemp("scripted")
    models = {}
    for case in CASES:
        objects: list[dict[str, object]] = [{"bbox_2d": case.model_box, "label": FINDING, "image": case.image},
                                            {"bbox_2d": [1, 2, 3], "label": "A box with three numbers"}]
        if case.pad:
            objects.append({"bbox_2d": [5, 2, 15, 8], "label": "A box on the padding"})
        models[case.name] = write_tiny_model(root / case.name, arch="qwen2_5_vl", report=grounded_report(*objects))
    return models


@pytest.fixture
def run_draft(
    make_settings: Callable[..., Settings], database_url: str, scripted: dict[str, Path], tmp_path: Path
) -> Iterator[Callable[[Case], tuple[Job, Draft]]]:
    from radassist.models import loader
    from tests.conftest import migrate
    from workers.app import make_celery
    from workers.base import reset_sessionmaker

    def run(case: Case) -> tuple[Job, Draft]:
        settings = make_settings(database_url=database_url, model_name=str(scripted[case.name]),
                                 model_local_files_only="true", model_image_size="112",
                                 model_pad_to_square=str(case.pad).lower(), model_max_new_tokens="64")
        migrate(settings)
        reset_sessionmaker()
        loader.clear_cache()
        make_celery(settings)
        from workers.tasks.draft import draft_study

        maker = make_sessionmaker(settings)
        with maker() as session:
            job = add_study(session, settings, [case.write(tmp_path / "study")])
        prepare(job.id)
        draft_study.apply(args=(str(job.id),)).get()
        with maker() as session:
            stored = session.get(Job, job.id)
            draft = session.scalars(select(Draft).where(Draft.job_id == job.id)).one()
            session.expunge_all()
        maker.kw["bind"].dispose()
        assert stored is not None
        return stored, draft

    yield run
    reset_sessionmaker()
    loader.clear_cache()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_box_lands_on_the_marker_in_source_pixels(case: Case, run_draft: Callable[[Case], tuple[Job, Draft]]) -> None:
    job, draft = run_draft(case)
    assert job.state is JobState.DRAFTED, job.error_code
    # The report keeps the words without the box markup.
    assert (draft.findings, draft.impression) == (f"{FINDING}. The heart is normal.", "Right upper zone focus.")
    assert "bbox_2d" in draft.raw_text and "bbox_2d" not in draft.findings + draft.impression
    assert "bbox_2d" in draft.prompt  # the model was asked for its boxes
    record = draft.generation["grounding"]
    assert record["grammar"] == "qwen2_5_vl"
    located = [f for f in record["findings"] if f["boxes"]]
    assert [f["text"] for f in located] == [FINDING]
    (box,) = located[0]["boxes"]
    assert box["frame_number"] == case.frame_number
    assert (box["x_min"], box["y_min"], box["x_max"], box["y_max"]) == case.source_box
    assert box["clipped"] is False
    # Malformed or misplaced boxes are dropped with a warning stored with the draft, never guessed.
    codes = [w["code"] for w in record["warnings"]]
    expected = ["grounding.box.arity"] + (["grounding.box.outside_image"] if case.pad else [])
    assert codes == expected
    assert all(FINDING not in w["detail"] for w in record["warnings"])


def test_the_recorded_steps_are_what_the_pixels_went_through(tmp_path: Path) -> None:
    """Imaging's recorded steps agree with its pixels: the marker is where the steps put it."""
    path = _single(tmp_path)
    study = prepare_study([path], image_size=112, max_images=4, square=True)
    (geometry,) = study.geometries
    assert (geometry.columns, geometry.rows, geometry.frame_number, geometry.picture) == (560, 280, 1, 0)
    assert study.images[0].size == (112, 112) and geometry.model_size == Size(112, 112)
    assert bright_box(study.images[0]) == (40, 48, 60, 60)  # (200, 100, 300, 160) / 5, then 28 rows down
    processor = qwen2_vl_resize(geometry.model_size, min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS)
    assert processor.after == Size(56, 56)  # so the marker is (20, 24, 30, 30) in the picture the model sees

    clip = prepare_study([_multiframe(tmp_path / "clip")], image_size=112, max_images=8)
    assert [(g.frame_number, g.picture, g.steps) for g in clip.geometries] == [(1, 0, ()), (3, 1, ()), (4, 2, ())]
    assert bright_box(clip.images[1]) == (60, 10, 80, 30)
