"""How fast pynetdicom itself receives, with a C-STORE handler that does nothing: the ceiling above our node.

    .venv/bin/python bench/pynetdicom_ceiling.py [--small N] [--ct-slices N]

Sends the studies of ``bench/ingest.py`` (small instances and a 512x512 CT, one association,
``TCP_NODELAY=1``) with dcmtk's storescu to four receivers: pynetdicom 3 as released, with a
handler that answers Success without looking at the data; the same served by the listener's
servers on stock pynetdicom (``dicom_node.acceptor``: the connection guard, ``[dicom]
pynetdicom_fast_path = false``); the same with the fast path (``dicom_node.fastpath``) and
``dicom_node.allocator``; and dcmtk's storescp.  Whatever our node does per instance comes on top
of the listener's figure in the mode it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ingest import REPO, _free_port, _wait, generate, send, start_storescp

_SCP = """
import sys, time
sys.path.insert(0, {repo!r})
from pynetdicom import AE, AllStoragePresentationContexts, evt
from dicom_node.ae import MAXIMUM_PDU_SIZE, TRANSFER_SYNTAXES
ae = AE(ae_title="RADASSIST")
ae.maximum_pdu_size = MAXIMUM_PDU_SIZE
for context in AllStoragePresentationContexts:
    ae.add_supported_context(context.abstract_syntax, list(TRANSFER_SYNTAXES))
handlers = [(evt.EVT_C_STORE, lambda event: 0x0000)]
mode = {mode!r}
if mode == "pynetdicom":
    ae.start_server(("127.0.0.1", {port}), evt_handlers=handlers)
else:
    from dicom_node.acceptor import NodeRequestHandler, serve
    from dicom_node.connections import ConnectionLimits, Connections
    from dicom_node.pdu_framing import largest_p_data
    handler = NodeRequestHandler
    if mode == "fast path":
        from dicom_node import fastpath
        from dicom_node.allocator import keep_large_buffers
        keep_large_buffers()
        handler = fastpath.install()
    limits = ConnectionLimits(artim_seconds=30, pdu_seconds=60, max_pending=64, largest_p_data=largest_p_data())
    serve(ae, ("127.0.0.1", {port}), handlers, request_handler=handler, connections=Connections(limits))
    while True:
        time.sleep(1)
"""

MODES = ("pynetdicom", "stock", "fast path")


def run_scp(files: list[Path], mode: str) -> float:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SCP.format(repo=str(REPO), mode=mode, port=port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        return len(files) / send(port, files, 1, True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_storescp(work: Path, files: list[Path]) -> float:
    proc, port = start_storescp(work, 1, True)
    try:
        return len(files) / send(port, files, 1, True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--ct-slices", type=int, default=300)
    args = parser.parse_args()
    os.environ.pop("RADASSIST_CONFIG", None)
    with tempfile.TemporaryDirectory(prefix="radassist-ceiling-") as tmp:
        work = Path(tmp)
        studies = generate(work / "in", args.small, args.ct_slices)
        print(f"{'study':<8}{'pynetdicom':>12}{'listener, stock':>17}{'fast path':>11}{'storescp':>10}"
              f"   inst/s; ratios to storescp")
        for name in ("small", "ct"):
            files = studies[name]
            rates = [run_scp(files, mode) for mode in MODES]
            ref = run_storescp(work, files)
            ratios = " / ".join(f"{rate / ref:.2f}" for rate in rates)
            print(f"{name:<8}{rates[0]:>12.1f}{rates[1]:>17.1f}{rates[2]:>11.1f}{ref:>10.1f}   {ratios}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
