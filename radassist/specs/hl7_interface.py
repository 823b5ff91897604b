"""The HL7 v2 interface specification, rendered from the builders' and readers' own tables."""

from __future__ import annotations


def render() -> str:
    return "# HL7 Interface Specification\n\n(to be generated from radassist.hl7's tables)\n"
