"""What every settings section shares: frozen, no unknown keys, docstrings as descriptions; the AE title rule."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


def validate_ae_title(value: str) -> str:
    """Apply PS3.5's AE rule: 1-16 characters of the default repertoire, no backslash or control."""
    stripped = value.strip()
    if not stripped or len(value) > 16:
        raise ValueError("an AE title has 1 to 16 characters")
    if any(ord(c) < 0x20 or ord(c) > 0x7E or c == "\\" for c in value):
        raise ValueError("an AE title may hold printable ASCII only, without backslash")
    return stripped


AETitle = Annotated[str, Field(min_length=1, max_length=16)]
SrClassName = Literal["enhanced", "comprehensive", "basic"]


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


