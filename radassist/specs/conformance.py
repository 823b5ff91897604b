"""The DICOM Conformance Statement (PS3.2 layout), rendered from the node's own tables."""

from __future__ import annotations


def render() -> str:
    return "# DICOM Conformance Statement\n\n(to be generated from dicom_node's tables)\n"
