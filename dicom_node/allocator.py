"""Keep the listener's large buffers in the heap, instead of fresh pages from the kernel each time.

glibc serves an allocation above its mmap threshold (128 KiB at start, raised dynamically to at
most the largest block freed so far) with a new ``mmap`` and returns it with ``munmap`` when freed.
Every PDU and data set the listener receives is such a block (a 256 KiB P-DATA-TF, a 512 KiB CT
slice, copied a few times on its way through pynetdicom), so each one would cost a page fault per
4 KiB touched.  With a fixed threshold of 32 MiB (the largest glibc takes) and a trim threshold of
64 MiB, freed blocks are reused; the cost is that a process keeps up to 64 MiB per malloc arena of
freed memory for the next association instead of returning it.  No buffer is ever sized by what a
peer declares beyond what the protocol allows (:mod:`dicom_node.pdu_framing`), so this keeps
memory the listener chose to use, not memory a peer asked for.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def keep_large_buffers() -> bool:
    """Set glibc's thresholds for this process; False (and nothing changed) on another C library."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1)
    if not ok:
        logger.info("the C library refused the allocator thresholds; large buffers stay mmap-backed")
    return ok


__all__ = ["keep_large_buffers"]
