"""The Application Entity: which SOP classes and transfer syntaxes we accept, and from whom.

We store the bytes as received and never decode pixels here, so every storage SOP class is
accepted in every common transfer syntax, compressed ones included: refusing JPEG 2000 would make
the PACS decompress (or, worse, drop) the study.
"""

from __future__ import annotations

from pydicom import uid
from pynetdicom import AE, AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from radassist.config import Settings

#: The order is our preference when a sender proposes several in one presentation context
#: (pynetdicom picks the first of ours that the sender proposed).  Lossless compressed first: the
#: sender keeps its encoding and does not have to decompress (which some cannot do for JPEG 2000);
#: then uncompressed; lossy last, so a sender that could send either is never asked to lose data.
TRANSFER_SYNTAXES: tuple[str, ...] = (
    uid.JPEG2000Lossless,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.JPEG2000MCLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLossless,
    uid.JPEGLSLossless,
    uid.RLELossless,
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,
    uid.JPEG2000,
    uid.HTJ2K,
    uid.JPEG2000MC,
    uid.JPEGLSNearLossless,
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
)

MAXIMUM_PDU_SIZE = 256 * 1024
"""The Maximum Length we announce for P-DATA-TF PDUs (PS3.8 D.1): a 512x512 CT slice arrives in two
PDUs, and dcmtk senders send up to the size announced."""


def build_ae(settings: Settings) -> AE:
    """An AE for C-STORE of any storage class and C-ECHO, answering to every pipeline's AE title.

    Which caller may call which title is decided per association by ``on_requested``
    (:mod:`dicom_node.access`), which also makes the called title the association's own; the
    library's check then refuses anything that slipped past (called AE not recognised).
    """
    dicom = settings.dicom
    ae = AE(ae_title=dicom.ae_title)
    ae.require_called_aet = True
    # The listener counts its association slots itself, apart from connections still negotiating
    # (dicom_node.associations, dicom_node.connections); pynetdicom's own count, of threads, could
    # only reach this once both limits were exceeded.
    ae.maximum_associations = dicom.max_associations + dicom.max_pending_connections
    ae.network_timeout = dicom.network_timeout_seconds
    ae.dimse_timeout = dicom.network_timeout_seconds
    ae.acse_timeout = dicom.artim_timeout_seconds  # pynetdicom's ARTIM timer runs on it too
    ae.maximum_pdu_size = MAXIMUM_PDU_SIZE
    for context in AllStoragePresentationContexts:
        assert context.abstract_syntax is not None
        ae.add_supported_context(context.abstract_syntax, list(TRANSFER_SYNTAXES))
    ae.add_supported_context(Verification, [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian])
    return ae
