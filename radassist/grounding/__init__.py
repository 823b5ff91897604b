"""Grounded findings: boxes read from a model's output and mapped back onto the source images.

``registry.parser_for(grammar)`` reads a model's text into findings with boxes in the model's
picture (``boxes``); ``geometry.map_findings`` maps those boxes onto the source frames through
each picture's :class:`~radassist.grounding.geometry.PictureGeometry`.  Pure functions and frozen
dataclasses: no I/O, no logging of model text.
"""

from radassist.coded import CodedLabel
from radassist.grounding.boxes import (
    Box,
    CoordinateSpace,
    GroundedFinding,
    GroundingWarning,
    ParsedReport,
)
from radassist.grounding.geometry import (
    Crop,
    MappedFinding,
    MappedReport,
    Pad,
    PictureGeometry,
    Resize,
    Size,
    SourceBox,
    map_findings,
    pad_to_square,
    to_source,
)
from radassist.grounding.registry import BoxGrammar, grammar_for_model, parser_for

__all__ = [
    "Box",
    "BoxGrammar",
    "CoordinateSpace",
    "Crop",
    "CodedLabel",
    "GroundedFinding",
    "GroundingWarning",
    "MappedFinding",
    "MappedReport",
    "Pad",
    "ParsedReport",
    "PictureGeometry",
    "Resize",
    "Size",
    "SourceBox",
    "grammar_for_model",
    "map_findings",
    "pad_to_square",
    "parser_for",
    "to_source",
]
