"""pynetdicom's UID check, remembered per UID through its documented hook (``_config.VALIDATORS``).

pynetdicom checks every UID it sets on a PDU item or a primitive (``utils.set_uid``) with
``_config.VALIDATORS["UI"]``, which builds a pydicom ``UID`` (checked against pydicom's pattern)
and looks at its length.  An association with a peer that proposes every storage class sets some
500 UIDs while it is decoded, negotiated and answered, and a router opening an association per study
proposes the same ones every time.  The check is a function of the UID and of
``_config.ENFORCE_UID_CONFORMANCE`` alone, so its answer is remembered for the last
:data:`REMEMBERED` of them, keyed by both; a UID that is not a ``str`` is checked afresh.  A check
that raises (pydicom set to raise on invalid values, as the test suite sets it) raises every time,
since nothing is remembered then; pydicom's warning about a non-conformant UID comes the first time
only, where Python would also show it once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from pynetdicom import _config

REMEMBERED = 8192
"""UIDs whose answer is kept (each SOP Instance UID passes once: they cycle through)."""
_installed = threading.Lock()

UidCheck = Callable[[Any], tuple[bool, str]]


class RememberedUidCheck:
    """Stands in for pynetdicom's ``VALIDATORS["UI"]``, asking the check it replaced once per UID."""

    def __init__(self, check: UidCheck) -> None:
        self.check = check
        self._remembered = functools.lru_cache(maxsize=REMEMBERED)(self._ask)

    def _ask(self, value: str, _enforce: bool) -> tuple[bool, str]:
        return self.check(value)

    def __call__(self, value: Any) -> tuple[bool, str]:
        if not isinstance(value, str):
            return self.check(value)
        return self._remembered(str(value), _config.ENFORCE_UID_CONFORMANCE)


def remember_uid_checks() -> None:
    """Put :class:`RememberedUidCheck` in front of the installed UID check (once per process)."""
    with _installed:
        current = _config.VALIDATORS["UI"]
        if not isinstance(current, RememberedUidCheck):
            _config.VALIDATORS["UI"] = RememberedUidCheck(current)


__all__ = ["REMEMBERED", "RememberedUidCheck", "remember_uid_checks"]
