"""Documents generated from the code's own tables, so they cannot drift from what the code does.

Each entry maps a file under ``docs/`` to the function that renders it.  ``radassist docs write``
writes them; ``radassist docs check`` (and a test) fails when a committed file differs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

DOCUMENTS: dict[str, str] = {
    "docs/dicom-conformance-statement.md": "dicom_node.conformance:render",
    "docs/hl7-interface-specification.md": "radassist.specs.hl7_interface:render",
}


def renderer(target: str) -> Callable[[], str]:
    module, _, name = target.partition(":")
    function: Callable[[], str] = getattr(importlib.import_module(module), name)
    return function


def rendered() -> dict[str, str]:
    """Every generated document's path (relative to the repository) and its current text."""
    return {path: renderer(target)() for path, target in DOCUMENTS.items()}


def drifted(root: Path) -> list[str]:
    """The documents under ``root`` that differ from (or are missing beside) what the code renders."""
    out = []
    for path, text in rendered().items():
        file = root / path
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def write(root: Path) -> list[str]:
    """Write every generated document under ``root``; the paths written."""
    written = []
    for path, text in rendered().items():
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        written.append(path)
    return written
