"""Priors benchmark: find and fetch a patient's prior from Orthanc by each kind of source.

    .venv/bin/python bench/priors.py [--ct-slices N] [--repeat N]

Loads a fresh Orthanc with a chest radiograph prior (PA and lateral, 16x16: the search and
round trips dominate) and a CT prior (one 512x512 series of N slices: the transfer dominates),
then times ``fetch_priors`` for each kind of source (C-GET, C-MOVE to dcmtk's storescp, DICOMweb,
Orthanc REST).  The sink keeps the bytes in memory.  As a reference it times dcmtk's ``getscu``
fetching the same CT series into a folder (C-GET, dcmtk's own SCU; it and storescp run with
``TCP_NODELAY=1``), and prints our C-GET's time as a ratio to it.  Each case runs ``--repeat`` times; the medians are printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from radassist.config.priors import (  # noqa: E402
    DicomPriorSource,
    DicomwebPriorSource,
    OrthancPriorSource,
    PriorRule,
)
from radassist.priors import FetchedInstance, fetch_priors  # noqa: E402
from radassist.priors.results import CurrentStudy  # noqa: E402
from tests.conftest import free_port, wait_for_port  # noqa: E402
from tests.dicom_factories import make_ct_instance  # noqa: E402
from tests.priors.factories import ISSUER, make_cxr_study, part10  # noqa: E402

ORTHANC = "/usr/sbin/Orthanc"
STORESCP = "/usr/bin/storescp"
GETSCU = "/usr/bin/getscu"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
OUR_AE = "RADASSIST"
#: dcmtk leaves Nagle on unless told; the reference and the C-MOVE destination run without it.
NODELAY = {**os.environ, "TCP_NODELAY": "1"}


def start(work: Path) -> tuple[list[subprocess.Popen[bytes]], int, int]:
    move_port, http_port, dicom_port = free_port(), free_port(), free_port()
    (work / "moved").mkdir()
    scp = subprocess.Popen([STORESCP, "--aetitle", OUR_AE, "--output-directory", str(work / "moved"),
                            str(move_port)], stderr=subprocess.DEVNULL, env=NODELAY)
    config = {
        "Name": "bench-priors", "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "ARCHIVE", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
        "DicomModalities": {"radassist": [OUR_AE, "127.0.0.1", move_port], "getscu": ["GETSCU", "127.0.0.1", 1]},
        "Plugins": [PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (work / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    with open(work / "orthanc.log", "wb") as log:
        orthanc = subprocess.Popen([ORTHANC, str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=work)
    for port in (move_port, http_port, dicom_port):
        wait_for_port(port, timeout=60)
    return [scp, orthanc], http_port, dicom_port


def ct_prior(slices: int) -> list:  # type: ignore[type-arg]
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    out = []
    for n in range(1, slices + 1):
        ds = make_ct_instance(study_uid=study, series_uid=series, frame_of_reference_uid=frame, series_number=1,
                              instance_number=n, rows=512, columns=512,
                              study_datetime=dt.datetime(2023, 2, 2, 10, 0))
        ds.IssuerOfPatientID = ISSUER
        out.append(ds)
    return out


def sources(kind: str, http_port: int, dicom_port: int) -> list:  # type: ignore[type-arg]
    if kind in ("get", "move"):
        return [DicomPriorSource(name="bench", ae_title="ARCHIVE", host="127.0.0.1", port=dicom_port,
                                 retrieve=kind, timeout_seconds=60)]  # type: ignore[arg-type]
    if kind == "dicomweb":
        return [DicomwebPriorSource(kind="dicomweb", name="bench", url=f"http://127.0.0.1:{http_port}/dicom-web",
                                    timeout_seconds=60)]
    return [OrthancPriorSource(kind="orthanc", name="bench", url=f"http://127.0.0.1:{http_port}", timeout_seconds=60)]


def timed(current: CurrentStudy, rule: PriorRule, kind: str, http_port: int, dicom_port: int) -> tuple[float, int]:
    received: list[FetchedInstance] = []
    started = time.perf_counter()
    result = fetch_priors(current, sources=sources(kind, http_port, dicom_port), rule=rule, time_limit_seconds=300,
                          our_ae_title=OUR_AE, max_instances=10_000, sink=received.append)
    elapsed = time.perf_counter() - started
    if not result.available:
        raise SystemExit(f"{kind}: no prior ({result.reason_code})")
    return elapsed, sum(len(p.sop_instance_uids) for p in result.priors)


def getscu(work: Path, dicom_port: int, study_uid: str, n: int) -> float:
    out = work / f"getscu-{n}"
    out.mkdir()
    started = time.perf_counter()
    subprocess.run([GETSCU, "-aet", "GETSCU", "-aec", "ARCHIVE", "-S", "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={study_uid}", "-od", str(out), "127.0.0.1", str(dicom_port)],
                   check=True, capture_output=True, env=NODELAY)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct-slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-priors-") as tmp:
        work = Path(tmp)
        processes, http_port, dicom_port = start(work)
        try:
            current = make_cxr_study(dt.datetime(2024, 3, 14, 9, 30))
            cxr = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))
            ct = ct_prior(args.ct_slices)
            megabytes = sum(len(part10(ds)) for ds in ct) / 1e6
            with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=60) as client:
                for ds in [*current, *cxr, *ct]:
                    client.post("/instances", content=part10(ds)).raise_for_status()
            now = CurrentStudy.from_dataset(current[0])
            ct_now = CurrentStudy.from_dataset(current[0], modalities=("CT",))
            cases = {"cxr (frontal)": (now, PriorRule(views=("PA",))),
                     f"ct ({args.ct_slices} x 512x512)": (ct_now, PriorRule(modalities=("CT",)))}
            print(f"{'case':24} {'source':9} {'median s':>9} {'images':>7} {'MB/s':>7}")
            medians: dict[tuple[str, str], float] = {}
            for name, (study, rule) in cases.items():
                for kind in ("get", "move", "dicomweb", "orthanc"):
                    runs = [timed(study, rule, kind, http_port, dicom_port) for _ in range(args.repeat)]
                    median = statistics.median(r[0] for r in runs)
                    medians[(name, kind)] = median
                    rate = f"{megabytes / median:7.1f}" if name.startswith("ct") else "      -"
                    print(f"{name:24} {kind:9} {median:9.3f} {runs[0][1]:7d} {rate}")
            reference = statistics.median(getscu(work, dicom_port, str(ct[0].StudyInstanceUID), n)
                                          for n in range(args.repeat))
            ours = medians[(f"ct ({args.ct_slices} x 512x512)", "get")]
            print(f"dcmtk getscu, same CT series: {reference:.3f} s ({megabytes / reference:.1f} MB/s); "
                  f"our C-GET / getscu = {ours / reference:.2f}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
