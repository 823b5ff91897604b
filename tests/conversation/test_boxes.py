"""Boxes in answers: read by the model's grammar, carried back through its processor's resize onto the
kept picture, dropped (and counted) when off it; and the whole path with a scripted tiny Qwen2.5-VL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from radassist.conversation.boxes import place_boxes
from radassist.db.tables import ConversationTurn
from radassist.grounding.geometry import Crop, Resize, Size
from radassist.grounding.registry import BoxGrammar
from radassist.states import TurnState
from radassist.store.prepared import prepared_store
from radassist_devtools.tiny_models import write_tiny_model
from tests.conversation.conftest import Drafted


def qwen_answer(*boxes: tuple[float, float, float, float], picture: int | None = None) -> str:
    objects = [{"bbox_2d": list(b), "label": "Nodule", **({"image": picture} if picture else {})} for b in boxes]
    return "A nodule in the right upper zone.\n```json\n" + json.dumps(objects) + "\n```"


def test_a_box_is_placed_on_the_kept_picture_through_the_processors_resize() -> None:
    kept = Size(200, 100)
    steps = (Resize(kept, Size(400, 196)),)  # e.g. Qwen's smart_resize to multiples of 28
    placed = place_boxes(qwen_answer((40, 49, 120, 98)), BoxGrammar.QWEN2_5_VL, [kept], ["PA"], lambda _: steps)
    assert placed.text == "A nodule in the right upper zone."  # the markup leaves the words
    assert placed.boxes == [{"picture": 0, "picture_label": "PA", "finding": "Nodule",
                             "x_min": 0.1, "y_min": 0.25, "x_max": 0.3, "y_max": 0.5}]
    assert placed.dropped == []


def test_a_crop_is_undone_and_a_box_off_the_picture_is_dropped_not_moved() -> None:
    kept = Size(100, 100)
    steps = (Resize(kept, Size(200, 200)), Crop(Size(200, 200), 50, 50, 100, 100))  # a centre crop
    placed = place_boxes(qwen_answer((0, 0, 50, 50), (0, 0, 400, 400)), BoxGrammar.QWEN2_5_VL, [kept], [""],
                         lambda _: steps)
    assert [(b["x_min"], b["y_min"], b["x_max"], b["y_max"]) for b in placed.boxes] == [(0.25, 0.25, 0.5, 0.5)]
    assert placed.dropped == ["grounding.box.outside_image"]
    other = place_boxes(qwen_answer((1, 1, 5, 5), picture=3), BoxGrammar.QWEN2_5_VL, [kept], [""], lambda _: ())
    assert other.boxes == [] and "grounding.box.picture" in other.dropped


def test_a_model_that_does_not_localise_keeps_its_words() -> None:
    text = "No pneumothorax. ```json [1, 2] ```"
    assert place_boxes(text, None, [Size(10, 10)], [""], lambda _: ()).text == text


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = ('Findings: A nodule in the right upper zone. ```json [{"bbox_2d": [14, 14, 42, 28], "label": '
              '"Nodule"}] ``` Impression: Right upper zone nodule.')
    return write_tiny_model(tmp_path_factory.mktemp("conversation-qwen") / "qwen2_5_vl", arch="qwen2_5_vl",
                            report=report)


def test_an_answer_with_a_box_from_a_localising_model(make_drafted: Callable[..., Drafted], tiny_qwen: Path) -> None:
    from radassist.grounding.processors import processor_steps
    from radassist.models.processors import load_processor
    from workers.tasks.answer import answer_question

    drafted = make_drafted(model_name=str(tiny_qwen))
    asked = drafted.ask("Where is the nodule?")
    answer_question.apply(args=(str(uuid.uuid4()),)).get()
    with drafted.sessions() as session:
        turn = session.get(ConversationTurn, asked.turn_id)
        assert turn is not None and turn.state is TurnState.ANSWERED, turn.error_message if turn else None
        boxes, answer = turn.boxes, turn.answer
    assert "bbox_2d" not in answer and "A nodule in the right upper zone." in answer
    kept = prepared_store(drafted.settings).load(drafted.job_id)
    assert kept is not None
    size = Size(*kept.study.images[0].size)
    processor = load_processor(str(tiny_qwen))
    model_size = processor_steps(processor.image_processor, size)[-1].after
    assert len(boxes) == 1
    box = boxes[0]
    assert box["picture"] == 0 and box["picture_label"] == "PA" and box["finding"] == "Nodule"
    expected = (14 / model_size.width, 14 / model_size.height, 42 / model_size.width, 28 / model_size.height)
    assert (box["x_min"], box["y_min"], box["x_max"], box["y_max"]) == pytest.approx(expected, abs=1e-4)
