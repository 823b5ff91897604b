"""C-STORE requests served on the thread that read them, instead of being handed to another.

pynetdicom 3 runs two threads per association: the DUL thread reads PDUs and assembles DIMSE
messages, then queues each request for the association thread, which runs the service (our
C-STORE handler) and queues the response back for the DUL thread to send.  A stored instance thus
crosses threads twice, each time a wake-up, a GIL hand-over and a queue.

Here a C-STORE request whose handling cannot need the DUL thread is served where it was decoded, at
the point pynetdicom would queue it: the handler runs, the response is queued on the DUL's own
outgoing queue, and the same thread sends it on its next turn.  The request goes the library's way
(the association thread) when:

- it is not a complete C-STORE request, or its context was not accepted, or its SOP class is not
  served by the Storage service class: pynetdicom answers those with a *blocking* abort, which on
  the DUL thread would wait for that thread to end;
- the association is releasing, or pynetdicom has not yet flagged it established.  The first
  request may arrive between the A-ASSOCIATE-AC leaving (the DUL is then in Sta6, PS3.8 9.2) and
  the association thread setting ``is_established`` after the accept handlers.  It must wait for
  that thread: the Storage service class sends no response at all on an association not flagged
  established, so a request served here in that gap was handled, its status dropped, and the
  sender left waiting for an answer that never came (seen under load when the handler answered
  fast, e.g. a refusal or out of resources);
- a request is already queued for, or being served by, the association thread: requests are served
  one at a time.  A peer that negotiated no asynchronous operations window (we offer none) waits for
  each response before its next request, so on a compliant association nothing is ever waiting;
  a peer that does not wait may see the responses to two requests in either order (each names its
  request's Message ID), as it could from any SCP.

What the handler may do is unchanged: it must not wait for this association's network traffic
(our handlers never do).  While it runs, nothing is read from the socket, exactly as the peer
expects while it waits for the response.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

if TYPE_CHECKING:
    from pynetdicom.association import Association


def serve_stores_inline(assoc: Association) -> None:
    """Serve ``assoc``'s plain C-STORE requests on its DUL thread (see the module docstring)."""
    dimse = assoc.dimse
    queue = dimse.msg_queue
    library_put = queue.put
    library_serve = assoc._serve_request
    serving = threading.Lock()
    """Held while any request of this association is being served, by either thread."""

    def serve(msg: Any, context_id: int) -> None:
        with serving:
            library_serve(msg, context_id)

    def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
        context_id, primitive = item
        if context_id is not None and _can_serve_here(assoc, context_id, primitive) and serving.acquire(False):
            try:
                with queue.mutex:
                    waiting = bool(queue.queue)
                if not waiting:
                    library_serve(primitive, context_id)
                    return
            finally:
                serving.release()
        library_put(item, block, timeout)

    assoc._serve_request = serve  # type: ignore[method-assign]
    queue.put = put  # type: ignore[method-assign]


def _can_serve_here(assoc: Association, context_id: int, primitive: Any) -> bool:
    if not isinstance(primitive, C_STORE) or primitive.MessageIDBeingRespondedTo is not None:
        return False
    if not primitive.is_valid_request or assoc._sent_release or not assoc.is_established:
        return False
    if context_id not in assoc._accepted_cx:
        return False
    sop_class = primitive.AffectedSOPClassUID
    return sop_class is not None and _serves_storage(str(sop_class))


@functools.lru_cache(maxsize=4096)
def _serves_storage(sop_class: str) -> bool:
    """Whether pynetdicom hands ``sop_class`` to the Storage service class (a few classes per peer)."""
    return uid_to_service_class(sop_class) is StorageServiceClass


__all__ = ["serve_stores_inline"]
