"""How fast pynetdicom itself receives, with a C-STORE handler that does nothing: the ceiling above our node.

    .venv/bin/python bench/pynetdicom_ceiling.py [--small N] [--ct-slices N]

Sends the studies of ``bench/ingest.py`` (small instances and a 512x512 CT, one association,
``TCP_NODELAY=1``) with dcmtk's storescu to three receivers: pynetdicom 3 as released, with a
handler that answers Success without looking at the data; the same with the listener's run-time
changes to pynetdicom (``dicom_node.transport.serve`` and ``dicom_node.allocator``); and dcmtk's
storescp.  Whatever our node does per instance comes on top of the middle figure.
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
if {ours!r}:
    from dicom_node.allocator import keep_large_buffers
    from dicom_node.transport import serve
    keep_large_buffers()
    serve(ae, ("127.0.0.1", {port}), handlers)
    while True:
        time.sleep(1)
else:
    ae.start_server(("127.0.0.1", {port}), evt_handlers=handlers)
"""


def run_scp(files: list[Path], ours: bool) -> float:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SCP.format(repo=str(REPO), ours=ours, port=port)],
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
        print(f"{'study':<8}{'pynetdicom inst/s':>19}{'+ our changes':>15}{'storescp':>10}{'ratios to storescp':>22}")
        for name in ("small", "ct"):
            files = studies[name]
            stock, patched, ref = run_scp(files, False), run_scp(files, True), run_storescp(work, files)
            print(f"{name:<8}{stock:>19.1f}{patched:>15.1f}{ref:>10.1f}{stock / ref:>13.2f} / {patched / ref:.2f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
