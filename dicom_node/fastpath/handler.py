"""The fast path's request handler: what it changes on each association pynetdicom creates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynetdicom.transport import AssociationSocket

from dicom_node.acceptor import NodeRequestHandler
from dicom_node.fastpath.bulk_read import BulkReadSocket
from dicom_node.fastpath.contexts import share_uids
from dicom_node.fastpath.first_request import take_decoded_request
from dicom_node.fastpath.inline_store import serve_stores_inline
from dicom_node.fastpath.prompt_receive import prompt_receive
from dicom_node.fastpath.reactor import wake_on_work
from dicom_node.fastpath.responses import answer_stores_directly
from dicom_node.fastpath.state_machine_guard import guard_state_machine
from dicom_node.fastpath.store_requests import decode_store_requests_directly

if TYPE_CHECKING:
    from pynetdicom.association import Association


class FastPathRequestHandler(NodeRequestHandler):
    """Associations that copy their contexts cheaply, take the request already decoded, read PDUs in
    bulk, survive state machine errors, give up their thread once the connection is gone, wake on
    work, decode C-STORE requests directly, serve them on the thread that read them and encode their
    responses directly."""

    def _create_association(self) -> Association:
        share_uids(self.server)  # before the library copies the server's contexts for this association
        assoc = super()._create_association()
        # The library builds a plain AssociationSocket (and queues its Evt5) with no way to pick
        # the class; ours only overrides ``recv`` and adds no state, so the object is re-classed.
        assert type(assoc.dul.socket) is AssociationSocket
        assoc.dul.socket.__class__ = BulkReadSocket
        take_decoded_request(assoc, self.decoded_request)
        guard_state_machine(assoc)
        prompt_receive(assoc)
        wake_on_work(assoc)
        answer_stores_directly(assoc)
        serve_stores_inline(assoc)
        decode_store_requests_directly(assoc)
        return assoc


__all__ = ["FastPathRequestHandler"]
