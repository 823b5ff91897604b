"""C-STORE requests are served on the DUL thread that read them (dicom_node.fastpath.inline_store), and only
those that cannot need that thread; everything else still reaches the association thread, in order."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dul import DULServiceProvider

import dicom_node.fastpath.responses
import dicom_node.handlers
import dicom_node.storage
from dicom_node.fastpath.inline_store import serve_stores_inline
from radassist.config import Settings
from tests.node.conftest import Node, echoscu, secondary_capture, storescu
from tests.peers import STORESCU

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
SENDS = 5


def _recording(handler: Callable[..., Any], threads: list[threading.Thread]) -> Callable[..., Any]:
    def record(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return handler(*args, **kwargs)

    return record


def test_a_store_is_served_on_the_dul_thread_and_an_echo_on_the_association_thread(
    migrated_settings: Settings, start_node: Callable[..., Node], testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also: the response is the directly encoded one (dicom_node.fastpath.responses), which the
    listener's wiring allows only with pynetdicom's standard log handlers off."""
    store_threads: list[threading.Thread] = []
    echo_threads: list[threading.Thread] = []
    encoded: list[threading.Thread] = []
    monkeypatch.setattr(dicom_node.storage, "handle_store", _recording(dicom_node.storage.handle_store, store_threads))
    monkeypatch.setattr(dicom_node.handlers, "handle_echo", _recording(dicom_node.handlers.handle_echo, echo_threads))
    monkeypatch.setattr(
        dicom_node.fastpath.responses,
        "encode_store_response",
        _recording(dicom_node.fastpath.responses.encode_store_response, encoded),
    )
    node = start_node(migrated_settings, pynetdicom_fast_path=True)

    # The instance five times on one association (the later ones idempotent re-sends).  A request goes
    # the library's way, as it should, when it arrives before the association thread has marked the
    # association established, or while that thread still holds the previous request it served (its
    # response already sent): on a loaded machine the first one or two can, one after another.
    instance = testdata / "pydicom-data" / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    result = subprocess.run(
        [STORESCU, "-R", "-xs", "-aet", "MODALITY", "-aec", "RADASSIST", "127.0.0.1", str(node.port),
         *[str(instance)] * SENDS],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert echoscu(node.port).returncode == 0

    assert node.counters.instances_stored == 1
    assert len(store_threads) == SENDS
    in_place = [t for t in store_threads if isinstance(t, DULServiceProvider)]
    assert in_place, "no C-STORE was served on the DUL thread"
    assert all(isinstance(t, (DULServiceProvider, Association)) for t in store_threads)
    [echo_thread] = echo_threads
    assert isinstance(echo_thread, Association)
    assert in_place[-1] in encoded


# --- which requests are served in place: a stand-in association ---------------------------------


class _Association:
    """What serve_stores_inline touches of a pynetdicom association; records who served what."""

    def __init__(self) -> None:
        self.dimse = SimpleNamespace(msg_queue=queue.Queue())
        self._sent_release = False
        self.is_established = True
        self.dul = SimpleNamespace(state_machine=SimpleNamespace(current_state="Sta6"))
        self._accepted_cx = {1: object()}
        self.served: list[tuple[Any, int, str]] = []
        self.release_library_serve = threading.Event()
        self.release_library_serve.set()
        self.library_serving = threading.Event()

    def _serve_request(self, msg: Any, context_id: int) -> None:
        self.library_serving.set()
        self.release_library_serve.wait(10)
        self.served.append((msg, context_id, threading.current_thread().name))


def _store_request(sop_class: str = CT_IMAGE, message_id: int = 1) -> C_STORE:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = "1.2.3.4"
    request.Priority = 0
    request.DataSet = BytesIO(b"\x08\x00\x60\x00CS\x02\x00OT")
    return request


def _queued(assoc: _Association) -> list[Any]:
    return [item[1] for item in assoc.dimse.msg_queue.queue]


def test_a_plain_store_request_is_served_where_it_was_decoded() -> None:
    assoc = _Association()
    serve_stores_inline(assoc)  # type: ignore[arg-type]
    request = _store_request()
    assoc.dimse.msg_queue.put((1, request))
    assert assoc.served == [(request, 1, threading.current_thread().name)]
    assert _queued(assoc) == []


def test_a_request_before_pynetdicom_flags_the_association_established_waits_for_its_thread() -> None:
    """The A-ASSOCIATE-AC is sent (Sta6) before the association thread sets ``is_established``, and
    pynetdicom's Storage service class sends no response on an association not flagged established."""
    assoc = _Association()
    assoc.is_established = False
    serve_stores_inline(assoc)  # type: ignore[arg-type]
    request = _store_request()
    assoc.dimse.msg_queue.put((1, request))
    assert assoc.served == []
    assert _queued(assoc) == [request]


def test_a_first_request_sent_while_the_association_is_being_accepted_is_answered(
    migrated_settings: Settings, start_node: Callable[..., Node], tmp_path: Path
) -> None:
    """The first C-STORE arrives while the association thread is still in the accept handlers, and
    is answered fast (here out of resources: its study's folder cannot be made).  Served on the DUL
    thread in that gap, its status was dropped and the sender waited for nothing: seen under load."""
    node = start_node(migrated_settings, pynetdicom_fast_path=True)
    node.server.bind(evt.EVT_ACCEPTED, lambda event: time.sleep(0.5))  # a loaded machine's slow accept
    instance = secondary_capture(tmp_path / "one.dcm")
    node.block_study_folder(instance)

    result = storescu(node.port, instance, answer_timeout=10)
    output = result.stdout + result.stderr
    assert "received store response (refused: outofresources)" in output.lower(), output
    assert node.counters.instances_failed == 1


def _echo_request() -> C_ECHO:
    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = VERIFICATION
    return echo


def _store_response() -> C_STORE:
    response = _store_request()
    response.MessageIDBeingRespondedTo = 1
    response.Status = 0
    return response


def _releasing(assoc: _Association) -> None:
    assoc._sent_release = True


def _not_established(assoc: _Association) -> None:
    assoc.is_established = False
    assoc.dul.state_machine.current_state = "Sta13"  # aborted, waiting for the connection to close


@pytest.mark.parametrize(
    ("context_id", "make", "prepare"),
    [
        (1, _echo_request, None),
        (1, _store_response, None),
        (1, lambda: _store_request(sop_class=VERIFICATION), None),  # pynetdicom would not use Storage
        (7, _store_request, None),  # a context that was not accepted: pynetdicom aborts
        (1, _store_request, _releasing),
        (1, _store_request, _not_established),
    ],
    ids=["C-ECHO", "a response", "not a storage class", "unaccepted context", "releasing", "not established"],
)
def test_anything_else_is_queued_for_the_association_thread(
    context_id: int, make: Callable[[], Any], prepare: Callable[[_Association], None] | None
) -> None:
    assoc = _Association()
    serve_stores_inline(assoc)  # type: ignore[arg-type]
    if prepare is not None:
        prepare(assoc)
    message = make()
    assoc.dimse.msg_queue.put((context_id, message))
    assert assoc.served == []
    assert _queued(assoc) == [message]


def test_a_store_waits_its_turn_behind_a_queued_request() -> None:
    assoc = _Association()
    serve_stores_inline(assoc)  # type: ignore[arg-type]
    echo, store = _echo_request(), _store_request()
    assoc.dimse.msg_queue.put((1, echo))
    assoc.dimse.msg_queue.put((1, store))
    assert _queued(assoc) == [echo, store]
    assert assoc.served == []


def test_a_store_is_not_served_beside_a_request_the_association_thread_is_serving() -> None:
    assoc = _Association()
    serve_stores_inline(assoc)  # type: ignore[arg-type]
    assoc.release_library_serve.clear()
    echo, store = _echo_request(), _store_request()
    association_thread = threading.Thread(target=assoc._serve_request, args=(echo, 1), name="association")
    association_thread.start()
    assert assoc.library_serving.wait(10)

    assoc.dimse.msg_queue.put((1, store))  # arrives while the echo is being served
    assert _queued(assoc) == [store]

    assoc.release_library_serve.set()
    association_thread.join(10)
    assert assoc.served == [(echo, 1, "association")]
