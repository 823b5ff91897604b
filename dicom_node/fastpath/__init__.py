"""Every change the listener makes to pynetdicom past its public API, in one package, behind one switch.

With ``[dicom] pynetdicom_fast_path = true`` (the default) the listener serves associations with
:class:`~dicom_node.fastpath.handler.FastPathRequestHandler`, which changes each association
pynetdicom creates:

- its copy of the supported presentation contexts shares their UIDs instead of re-validating
  each (:mod:`~dicom_node.fastpath.contexts`);
- its DUL takes the A-ASSOCIATE-RQ the acceptor decoded instead of decoding it again
  (:mod:`~dicom_node.fastpath.first_request`);
- its socket reads a PDU in bulk (:mod:`~dicom_node.fastpath.bulk_read`);
- an exception in a state machine action aborts the association instead of ending the DUL thread
  (:mod:`~dicom_node.fastpath.state_machine_guard`, a pynetdicom bug; patch in ``docs/upstream``);
- the acceptor stops waiting for an A-ASSOCIATE-RQ once the connection is gone
  (:mod:`~dicom_node.fastpath.prompt_receive`, a pynetdicom bug; patch in ``docs/upstream``);
- its two reactor threads wait for work instead of polling (:mod:`~dicom_node.fastpath.reactor`,
  which also replaces ``time`` in two pynetdicom modules, once per process);
- pynetdicom's UID check is remembered per UID, through its documented ``_config.VALIDATORS``
  hook (:mod:`~dicom_node.fastpath.uid_check`, once per process);
- C-STORE requests are decoded without a pydicom data set
  (:mod:`~dicom_node.fastpath.store_requests`), served on the thread that read them
  (:mod:`~dicom_node.fastpath.inline_store`), their responses encoded directly
  (:mod:`~dicom_node.fastpath.responses`).

:func:`check_compatible` names each of pynetdicom's names these need that the installed version
lacks (:data:`~dicom_node.fastpath.requirements.REACHES`); :func:`install` refuses to start the fast
path then (``config.pynetdicom_incompatible``, exit status 2).  With the switch off the listener
runs stock pynetdicom through its public hooks only: events, ``request_handler=``,
``AE.make_server``, ``_config``.  What protects the node from a hostile network
(:mod:`dicom_node.connections`) holds either way.
"""

from __future__ import annotations

import threading

import pynetdicom

from dicom_node.acceptor import NodeRequestHandler
from dicom_node.fastpath.requirements import missing
from radassist.errors import ConfigError

_installed = threading.Lock()


def check_compatible() -> list[str]:
    """The names (``module.Class.attribute``) the fast path needs that the installed pynetdicom lacks."""
    return missing()


def incompatible(problems: list[str]) -> ConfigError:
    """What an admin reads when the installed pynetdicom lacks names the fast path replaces."""
    return ConfigError(
        f"the installed pynetdicom {pynetdicom.__version__} lacks {', '.join(problems)}, which "
        "[dicom] pynetdicom_fast_path changes; set pynetdicom_fast_path = false to run stock pynetdicom",
        code="config.pynetdicom_incompatible",
    )


def install() -> type[NodeRequestHandler]:
    """Check the installed pynetdicom, make the process-wide change (once), and return the request
    handler class that makes the per-association ones.  Raises ``ConfigError`` when incompatible."""
    problems = check_compatible()
    if problems:
        raise incompatible(problems)
    from dicom_node.fastpath.handler import FastPathRequestHandler
    from dicom_node.fastpath.reactor import install_reactor_clock
    from dicom_node.fastpath.uid_check import remember_uid_checks

    with _installed:
        install_reactor_clock()
        remember_uid_checks()
    return FastPathRequestHandler


__all__ = ["check_compatible", "incompatible", "install"]
