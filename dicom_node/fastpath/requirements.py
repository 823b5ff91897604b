"""Every name of pynetdicom the fast path reaches past its public API, and the check that they exist.

:data:`REACHES` is the whole list: each name the fast path replaces, wraps, reads or writes that
pynetdicom does not document as public, where it is, and what the fast path does with it.
:func:`missing` looks each one up in the installed pynetdicom (instance attributes on a probe
association that is built but never started) and, for what is replaced or wrapped, the
parameter names the fast path calls it with.  A release that renames one of them is named by
the check before the listener serves anything.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

DUL = "pynetdicom.dul.DULServiceProvider"
ASSOCIATION = "pynetdicom.association.Association"
DIMSE = "pynetdicom.dimse.DIMSEServiceProvider"
FSM = "pynetdicom.fsm.StateMachine"
PRESENTATION_CONTEXT = "pynetdicom.presentation.PresentationContext"


@dataclass(frozen=True)
class Reach:
    """One name the fast path depends on."""

    owner: str
    """A module (``pynetdicom.dul``) or a class (``pynetdicom.dul.DULServiceProvider``)."""
    name: str
    use: str
    """What the fast path does with it, for the start-up message and the documentation."""
    instance: bool = False
    """Set on instances (looked up on the probe association), not on the class."""
    parameters: tuple[str, ...] | None = None
    """For a callable that is replaced or wrapped: its parameter names after ``self``."""

    @property
    def label(self) -> str:
        return f"{self.owner}{'()' if self.instance else ''}.{self.name}"


REACHES: tuple[Reach, ...] = (
    Reach("pynetdicom.transport.RequestHandler", "_create_association", "overridden: sets up each association", parameters=()),
    Reach("pynetdicom.dul", "time", "replaced process-wide: the reactor's sleeps wait for work"),
    Reach("pynetdicom.association", "time", "replaced process-wide: the reactor's sleeps wait for work"),
    Reach(DUL, "run_reactor", "its 1 ms polling sleep waits for work instead", parameters=()),
    Reach(ASSOCIATION, "_run_reactor", "its 1 ms polling sleep waits for work instead", parameters=()),
    Reach(DUL, "run", "wrapped: closes the wake-up sockets when the DUL ends", parameters=()),
    Reach(DUL, "send_pdu", "wrapped: wakes the DUL thread", parameters=("primitive",)),
    Reach(DUL, "kill_dul", "wrapped: wakes the DUL thread", parameters=()),
    Reach(DUL, "stop_dul", "wrapped: wakes the DUL thread", parameters=()),
    Reach(DUL, "_decode_pdu", "wrapped: the A-ASSOCIATE-RQ already decoded is not decoded again", parameters=("bytestream",)),
    Reach(DUL, "receive_pdu", "wrapped: an acceptor stops waiting once the connection is gone", parameters=("wait", "timeout")),
    Reach(DUL, "socket", "read: the connection's socket (re-classed to read in bulk)", instance=True),
    Reach(DUL, "to_user_queue", "read; its put wakes the association thread", instance=True),
    Reach(DUL, "_kill_thread", "read and set: stops the DUL reactor", instance=True),
    Reach(DUL, "state_machine", "read: the upper layer state", instance=True),
    Reach(DUL, "to_provider_queue", "read: a C-STORE response is sent at once only when nothing waits there", instance=True),
    Reach(FSM, "do_action", "wrapped: an action that raises aborts the association", parameters=("event",)),
    Reach(FSM, "current_state", "read: the upper layer state", instance=True),
    Reach(ASSOCIATION, "_serve_request", "wrapped: C-STORE requests served on the DUL thread", parameters=("msg", "context_id")),
    Reach(ASSOCIATION, "_accepted_cx", "read: the accepted presentation contexts", instance=True),
    Reach(ASSOCIATION, "_sent_release", "read: whether a release is under way", instance=True),
    Reach(ASSOCIATION, "_kill", "set: stops the association reactor", instance=True),
    Reach(DIMSE, "msg_queue", "read; its put serves C-STORE requests in place", instance=True),
    Reach(DIMSE, "send_msg", "wrapped: C-STORE responses encoded directly", parameters=("primitive", "context_id")),
    Reach(DIMSE, "maximum_pdu_size", "read: the peer's maximum PDU length"),
    Reach(DIMSE, "receive_primitive", "wrapped: C-STORE requests decoded directly", parameters=("primitive",)),
    Reach(DIMSE, "message", "read: a DIMSE message the library is assembling", instance=True),
    Reach("pynetdicom.dimse_primitives.C_STORE", "_context_id", "set: the context a decoded request came on"),
    Reach("pynetdicom._config", "STORE_RECV_CHUNKED_DATASET", "read: requests stored to a temporary file go the library's way"),
    Reach("pynetdicom.transport.AssociationSocket", "recv", "overridden: reads a PDU in bulk", parameters=("nr_bytes",)),
    Reach(PRESENTATION_CONTEXT, "_transfer_syntax", "read and set: each association's copy of a supported context "
          "gets a list of its own, the UIDs shared", instance=True),
)


def _probe() -> dict[str, Any]:
    """Instances to look instance attributes up on: one acceptor association, built, never started,
    and one presentation context."""
    from pynetdicom import AE
    from pynetdicom.association import Association
    from pynetdicom.presentation import PresentationContext

    assoc = Association(AE(), "acceptor")
    dul = getattr(assoc, "dul", None)
    return {
        ASSOCIATION: assoc,
        DUL: dul,
        DIMSE: getattr(assoc, "dimse", None),
        FSM: getattr(dul, "state_machine", None),
        PRESENTATION_CONTEXT: PresentationContext(),
    }


def _owner(path: str) -> Any:
    """The module or class at ``path``, or None."""
    try:
        return importlib.import_module(path)
    except ImportError:
        pass
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _parameters(function: Any) -> tuple[str, ...] | None:
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None
    return tuple(names[1:] if names and names[0] == "self" else names)


def missing() -> list[str]:
    """What the installed pynetdicom lacks of :data:`REACHES`, one entry each (empty: all there)."""
    try:
        probe = _probe()
    except Exception as exc:  # noqa: BLE001 - any failure here is an incompatibility to report
        return [f"{ASSOCIATION}(ae, 'acceptor') ({type(exc).__name__})"]
    problems = []
    for reach in REACHES:
        owner = probe.get(reach.owner) if reach.instance else _owner(reach.owner)
        if owner is None or not hasattr(owner, reach.name):
            problems.append(reach.label)
            continue
        if reach.parameters is not None:
            found = _parameters(getattr(owner, reach.name))
            if found != reach.parameters:
                problems.append(f"{reach.label}({', '.join(reach.parameters)})")
    return problems


__all__ = ["REACHES", "Reach", "missing"]
