"""Grounded drafts: the model is asked for boxes in its own grammar, and its boxes are read, mapped
back onto the source images and recorded with the draft.

A backend grounds when it names a grammar (``box_grammar``: ``[model] box_grammar``, or recognised
from the model's name, architecture and processor class by
:func:`radassist.grounding.grammar_for_model`).  The model's boxes are in the coordinates of the
picture its vision encoder saw, so each prepared picture's geometry (source frame, our resize and
padding) is completed with the model processor's own steps: the backend's ``picture_steps`` when it
knows its processor, else the grammar's stock processor.  The report keeps the model's words
without the box markup; malformed boxes and boxes that do not land on a source image are dropped
and recorded as warnings, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from radassist.grounding import BoxGrammar, PictureGeometry, Size, grammar_for_model, map_findings, parser_for
from radassist.grounding.geometry import Step
from radassist.grounding.record import grounding_record
from radassist.imaging.prepare import PreparedStudy

logger = logging.getLogger(__name__)

StepsFor = Callable[[Size, int], tuple[Step, ...]]
"""``(picture size, pictures in the request) -> the processor's steps`` for one picture."""

# What the model is asked for, per grammar: MAIRA-2 grounds when its processor is asked to, so its
# prompt says nothing of boxes.
INSTRUCTIONS: dict[BoxGrammar, str] = {
    BoxGrammar.QWEN2_5_VL: (
        "After the report, locate each abnormal finding you describe: a JSON list in a ```json block, one "
        'object per region, {"bbox_2d": [x1, y1, x2, y2], "label": "<the finding, in the words of the '
        'report>", "image": <the number of the image it is on>}. Leave the JSON out when there is no '
        "abnormal finding to locate."
    ),
}


def resolve_grammar(setting: str, *names: str | None) -> BoxGrammar | None:
    """The grammar ``[model] box_grammar`` names: ``none``, a grammar, or ``auto`` (recognised from ``names``)."""
    if setting == "none":
        return None
    if setting != "auto":
        return BoxGrammar(setting)
    return grammar_for_model(*names)


def grammar_of(backend: object) -> BoxGrammar | None:
    """The grammar a backend's model writes boxes in, or None (its text is used as it is)."""
    value = getattr(backend, "box_grammar", None)
    return BoxGrammar(value) if value else None


def with_instruction(prompt: str, grammar: BoxGrammar | None) -> str:
    """``prompt`` with the grammar's request for boxes appended (unchanged when it needs none)."""
    instruction = INSTRUCTIONS.get(grammar) if grammar is not None else None
    return f"{prompt}\n\n{instruction}" if instruction else prompt


def stock_steps(grammar: BoxGrammar) -> StepsFor:
    """The processor steps of the grammar's own model with its stock settings (for a model served
    elsewhere, e.g. by an OpenAI-compatible server, whose processor this process cannot see)."""
    from radassist.grounding.processors import maira_2_steps, qwen2_vl_resize

    if grammar is BoxGrammar.MAIRA_2:
        return lambda size, pictures: maira_2_steps(size)
    return lambda size, pictures: (qwen2_vl_resize(size),)


def model_geometries(backend: object, grammar: BoxGrammar, study: PreparedStudy) -> list[PictureGeometry]:
    """Each prepared picture's geometry completed with the model processor's steps.

    A picture whose processor steps cannot be stated (a processor whose sizing we do not know)
    is left out, so a box on it is dropped with ``grounding.box.picture``.
    """
    steps_for: StepsFor = getattr(backend, "picture_steps", None) or stock_steps(grammar)
    complete = []
    for geometry in study.geometries:
        try:
            complete.append(geometry.then(*steps_for(geometry.model_size, len(study.images))))
        except ValueError as exc:
            logger.warning("picture %d: the model processor's sizing is not known (%s); its boxes are dropped",
                           geometry.picture, type(exc).__name__)
    return complete


def ground(backend: object, study: PreparedStudy, text: str) -> tuple[str, dict[str, Any] | None]:
    """The report text without box markup, and the grounding record (None when the backend does not ground)."""
    grammar = grammar_of(backend)
    if grammar is None:
        return text, None
    parsed = parser_for(grammar)(text)
    pictures: Sequence[PictureGeometry] = model_geometries(backend, grammar, study)
    mapped = map_findings(parsed.findings, pictures)
    warnings = (*parsed.warnings, *mapped.warnings)
    boxes = sum(len(f.boxes) for f in mapped.findings)
    logger.info("grounding (%s): %d box(es) on the source images, %d dropped with a warning", grammar, boxes,
                len(warnings))
    return parsed.text, grounding_record(grammar, mapped.findings, warnings, pictures)
