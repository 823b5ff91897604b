"""A coded concept as the model or a profile names it: a finding, an abnormality, a procedure.

One class for every stage that carries codes (grounded findings, SR labels, the requested procedure),
checked once here: the SR writes it as a CodedConcept, whose value (64) and scheme (16) are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodedLabel:
    """A coded concept the model reported or a profile names (e.g. SCT 36118008 "Pneumothorax")."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        for name in ("value", "scheme", "meaning"):
            item = getattr(self, name)
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f'Field "{name}" of a coded label must be a non-empty string.')
        if len(self.value) > 64 or len(self.scheme) > 16:
            raise ValueError('A coded label\'s "value" (64) or "scheme" (16) is too long.')
