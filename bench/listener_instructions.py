"""Instructions our listener executes per received instance: a speed figure the VM's drift cannot move.

    .venv/bin/python bench/listener_instructions.py [--kind small|ct] [--few 50] [--many 250] [--stock] [--each-alone]

The timings of ``bench/ingest.py`` move by a factor of two within minutes on a shared VM.  This runs
the real listener (``python -m dicom_node``, SQLite) under valgrind's callgrind, which counts the
instructions executed in user space by every thread, sends ``--few`` and then, to a second listener,
``--many`` instances of the bench's studies with dcmtk's storescu, and prints the difference per
instance: start-up and the first association cancel out.  ``--each-alone`` sends each instance on an
association of its own (a storescu per file, as a router that opens one per study), so the figure
is what one association with one instance costs.  ``--stock`` runs the listener on stock
pynetdicom (``[dicom] pynetdicom_fast_path = false``) instead of the fast path.  Kernel work (fsync, file creation, the
network) is not counted, so this measures our Python and pynetdicom's, which is what a code change
moves.  Repeatable to a few tenths of a percent; each run takes a few minutes (valgrind runs
Python some 50 times slower).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ingest import generate, send, start_ours


def instructions(work: Path, files: Sequence[Path], *, each_alone: bool = False) -> int:
    """Instructions callgrind counted in a listener, from start to stop, that received ``files``."""
    out = work / f"callgrind-{len(files)}.out"
    # valgrind starts Python some 50 times slower: allow it ten minutes to listen.
    proc, port = start_ours(
        work, "", prefix=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], startup_timeout=600
    )
    try:
        send(port, list(files), 1, True, each_alone=each_alone)
    finally:
        proc.terminate()
        proc.wait(timeout=300)
    total = 0
    for dump in work.glob(f"{out.name}*"):  # one file per process
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    if not total:
        raise RuntimeError("callgrind wrote no totals; is valgrind installed?")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("small", "ct"), default="small")
    parser.add_argument("--few", type=int, default=50)
    parser.add_argument("--many", type=int, default=250)
    parser.add_argument("--stock", action="store_true", help="stock pynetdicom instead of the fast path")
    parser.add_argument("--each-alone", action="store_true", help="one association per instance")
    args = parser.parse_args()
    if args.many <= args.few:
        parser.error("--many must be larger than --few")
    os.environ.pop("RADASSIST_CONFIG", None)
    os.environ["RADASSIST_DICOM_PYNETDICOM_FAST_PATH"] = "false" if args.stock else "true"  # the listener's mode
    with tempfile.TemporaryDirectory(prefix="radassist-instructions-") as tmp:
        work = Path(tmp)
        studies = generate(work / "in", args.many if args.kind == "small" else 1, args.many if args.kind == "ct" else 1)
        files = studies[args.kind]
        few = instructions(work, files[: args.few], each_alone=args.each_alone)
        many = instructions(work, files, each_alone=args.each_alone)
    per_instance = (many - few) / (args.many - args.few)
    mode = ("stock pynetdicom" if args.stock else "fast path") + (", an association each" if args.each_alone else "")
    print(f"{args.kind} ({mode}): {per_instance / 1e6:.2f} M instructions per instance in user space "
          f"({args.few} instances: {few / 1e9:.2f} G, {args.many}: {many / 1e9:.2f} G)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
