"""The conformance statement is rendered from the listener's own tables: what they hold, it says."""

from __future__ import annotations

import dataclasses

import pytest

from dicom_node import access, statuses
from dicom_node.ae import MAXIMUM_PDU_SIZE, TRANSFER_SYNTAXES
from dicom_node.conformance import render
from dicom_node.pdu_framing import LARGEST_OTHER_PDU


def test_every_table_of_the_listener_is_in_the_statement() -> None:
    text = render()
    assert all(f"`{refusal.code}`" in text for refusal in access.REFUSALS)
    assert all(f"{int(status):04X}H" in text for status in statuses.StoreStatus)
    assert all(f"`{code}`" in text for code in statuses.REJECTION_STATUS)
    assert all(f"`{syntax}`" in text for syntax in TRANSFER_SYNTAXES)
    assert f"{MAXIMUM_PDU_SIZE} bytes" in text and f"{LARGEST_OTHER_PDU} bytes" in text
    assert "`1.2.840.10008.5.1.4.1.1.2`" in text  # CT Image Storage, from the AE's contexts
    for heading in ("## 1. Overview", "### 3.3 Query/Retrieve SCU", "### 8.3 SR content", "## 7. Security"):
        assert heading in text


def test_a_changed_table_changes_the_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = dataclasses.replace(access.TOO_MANY_ASSOCIATIONS, code="example.new_rule", when="a new rule applies")
    monkeypatch.setattr(access, "REFUSALS", (*access.REFUSALS, extra))
    assert "| 8 | `example.new_rule` | a new rule applies |" in render()
