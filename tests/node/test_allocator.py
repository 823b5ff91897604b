"""The listener keeps large buffers in the heap (dicom_node.allocator); bench/ingest.py measures why."""

from __future__ import annotations

import platform

import pytest

from dicom_node.allocator import keep_large_buffers


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_glibc_takes_the_thresholds() -> None:
    assert keep_large_buffers() is True
