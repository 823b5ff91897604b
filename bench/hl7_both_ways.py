"""What the HL7 safety checks cost, and how many orders the inbound listener takes per second.

    .venv/bin/python bench/hl7_both_ways.py [--builds N] [--orders N]

ORU^R01: ``build_oru`` for a draft of 20 Findings lines and 3 Impression lines, whole, and its
three steps on the same message: rendering (escaping every value), the read-back with python-hl7
and hl7apy's STRICT validation.  Inbound: ORM^O01 orders sent by python-hl7's MLLPClient to the
listener (SQLite in a temporary folder), one ACK awaited per message, on one connection and on
four at once.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

import pydicom  # noqa: E402
from hl7.client import MLLPClient  # noqa: E402

from hl7_node.server import Hl7Listener  # noqa: E402
from radassist.config import Hl7Settings, load_settings  # noqa: E402
from radassist.db.engine import make_sessionmaker  # noqa: E402
from radassist.db.migrate import upgrade  # noqa: E402
from radassist.hl7 import er7, oru  # noqa: E402

NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def _source() -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.PatientID, ds.IssuerOfPatientID, ds.PatientName = "PAT-0001", "HOSP", "DOE^JANE"
    ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber = "19700101", "F", "ACC-0001"
    ds.StudyDescription, ds.StudyDate, ds.StudyTime = "CT CHEST | LOW DOSE", "20240501", "101500"
    return ds


def _per_call(function: object, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        function()  # type: ignore[operator]
    return (time.perf_counter() - started) / count * 1000


def bench_oru(count: int) -> None:
    source = _source()
    findings = "\n".join(f"Line {n}: no focal consolidation ^ effusion & no pneumothorax." for n in range(20))
    kwargs = dict(findings=findings, impression="No acute disease.\nFollow-up.\nNone.", control_id="c1",
                  study_instance_uid="1.2.3.4", hl7=Hl7Settings(), now=NOW)
    whole = _per_call(lambda: oru.build_oru(source, **kwargs), count)  # type: ignore[arg-type]
    segments = oru.oru_segments(source, **kwargs)  # type: ignore[arg-type]
    er7_text = er7.render(segments)
    render = _per_call(lambda: er7.render(segments), count)
    read_back = _per_call(lambda: er7.check_read_back(er7_text, segments, "ORU^R01"), count)
    strict = _per_call(lambda: oru.validate_strict(er7_text, "ORU^R01"), count)
    print(f"ORU^R01 ({len(segments)} segments, {len(er7_text)} characters), ms per message over {count}:")
    print(f"  build_oru {whole:.2f} = render {render:.2f} + read-back {read_back:.2f} + hl7apy STRICT {strict:.2f} + rest")


def _orm(n: int) -> str:
    return (f"MSH|^~\\&|RIS|HOSP|RADASSIST|RAD|20240501101500||ORM^O01^ORM_O01|B{n}|P|2.5.1\r"
            f"PID|1||PAT-{n}^^^HOSP^MR||DOE^JANE\rORC|NW|P{n}^HIS|F{n}^RIS||SC\r"
            f"OBR|1|P{n}^HIS|F{n}^RIS|RPC^CT chest^L||||||||||||||ACC-{n}\r")


def bench_inbound(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        import os

        os.environ["RADASSIST_STORAGE_PATH"] = folder
        os.environ["RADASSIST_DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        settings = load_settings(None)
        upgrade(settings)
        listener = Hl7Listener(make_sessionmaker(settings), Hl7Settings(accession_field="OBR-18"),
                               host="127.0.0.1", port=0)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(listener.start())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

        def send(first: int, many: int) -> None:
            with MLLPClient("127.0.0.1", listener.port) as client:
                for n in range(first, first + many):
                    client.send_message(_orm(n))

        for connections in (1, 4):
            started = time.perf_counter()
            with ThreadPoolExecutor(connections) as pool:
                for c in range(connections):
                    pool.submit(send, connections * 100_000 + c * count, count // connections)
            elapsed = time.perf_counter() - started
            print(f"inbound ORM^O01 over {connections} connection(s): {count / elapsed:.0f} messages/s "
                  f"({elapsed / count * 1000:.2f} ms each, SQLite)")
        asyncio.run_coroutine_threadsafe(listener.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    bench_oru(args.builds)
    bench_inbound(args.orders)


if __name__ == "__main__":
    main()
