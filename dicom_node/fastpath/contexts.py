"""Each association's copy of the supported presentation contexts, made without re-validating their UIDs.

pynetdicom gives every association a ``deepcopy`` of the server's supported contexts, so that one
association's changes cannot reach another's.  The listener supports every storage SOP class with
several transfer syntaxes, and ``deepcopy`` rebuilds each of their UIDs through pydicom's ``UID()``,
which validates it against a regular expression.  That copy was half of the listener's CPU for an
association that stores one instance (62-69 ms with it, 31-40 ms without; storescu's whole run 83-95
against 54-71 ms, Orthanc's 27 ms): PACS routers often open an association per study.

A UID is an immutable string: the copy here makes new context objects and new transfer syntax lists,
as ``deepcopy`` does, and shares the UIDs.  It keeps the contract (each association has contexts of
its own) at a fraction of the cost.  Should pynetdicom stop copying with ``deepcopy``, the list is
still a list and the listener only loses the speed.
"""

from __future__ import annotations

import copy
from typing import Any

from pynetdicom.presentation import PresentationContext


class SharedUidContexts(list[PresentationContext]):
    """The server's supported contexts, whose ``deepcopy`` copies each context but not its UIDs."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        return [copy_context(context) for context in self]


def copy_context(context: PresentationContext) -> PresentationContext:
    """A new context with ``context``'s values and a transfer syntax list of its own (same UIDs)."""
    twin = copy.copy(context)
    twin._transfer_syntax = list(context._transfer_syntax)
    return twin


def share_uids(server: Any) -> None:
    """Make ``server``'s per-association copies of its contexts share their UIDs (idempotent)."""
    contexts = server.contexts
    if not isinstance(contexts, SharedUidContexts):
        server.contexts = SharedUidContexts(contexts)


__all__ = ["SharedUidContexts", "copy_context", "share_uids"]
