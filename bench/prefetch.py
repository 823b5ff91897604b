"""Priors stage benchmark: what storing and recording a job's priors adds to fetching them.

    .venv/bin/python bench/prefetch.py [--ct-slices N] [--repeat N]

Loads a fresh Orthanc (``bench/priors.py``'s) with a patient's chest radiograph prior (PA and
lateral, 16x16) and a CT prior (one 512x512 series of N slices).  For each case and each source
kind (C-GET, Orthanc REST) it times, on SQLite in a fresh data folder per run:

* the library alone: ``fetch_priors`` handing the images to an in-memory sink;
* the whole stage of one job (``radassist/prefetch``): start the search, read the current study's
  headers, search and fetch, store each image in the instance store (fsynced) and record it with
  intake's records in a ``prior`` study, and record the outcome with the job queued for drafting.

It prints the medians and the stage's time as a ratio to the library's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import pydicom  # noqa: E402

from bench.priors import ct_prior, sources, start  # noqa: E402
from radassist.completion.claim import claim_all  # noqa: E402
from radassist.config import Settings, load_settings  # noqa: E402
from radassist.config.priors import PriorRule, PriorsSettings  # noqa: E402
from radassist.db.base import utcnow  # noqa: E402
from radassist.db.engine import make_sessionmaker  # noqa: E402
from radassist.db.migrate import upgrade  # noqa: E402
from radassist.intake.header import parse_header  # noqa: E402
from radassist.intake.record import record_instance  # noqa: E402
from radassist.prefetch.record import record_search, start_search  # noqa: E402
from radassist.prefetch.run import search_priors  # noqa: E402
from radassist.priors import CurrentStudy, FetchedInstance, fetch_priors  # noqa: E402
from radassist.store.instances import InstanceStore  # noqa: E402
from tests.priors.factories import make_cxr_study, part10  # noqa: E402

OUR_AE = "RADASSIST"


def library(current: list[pydicom.Dataset], rule: PriorRule, kind: str, http: int, dicom: int) -> tuple[float, int]:
    received: list[FetchedInstance] = []
    started = time.perf_counter()
    result = fetch_priors(CurrentStudy.from_dataset(current[0], modalities=tuple(rule.modalities)),
                          sources=sources(kind, http, dicom), rule=rule, time_limit_seconds=300, our_ae_title=OUR_AE,
                          max_instances=10_000, sink=received.append)
    elapsed = time.perf_counter() - started
    if not result.available:
        raise SystemExit(f"library {kind}: no prior ({result.reason_code})")
    return elapsed, len(received)


def _node(folder: Path, rule: PriorRule, kind: str, http: int, dicom: int) -> Settings:
    settings = load_settings(environ={"RADASSIST_STORAGE_PATH": str(folder),
                                      "RADASSIST_DATABASE_URL": f"sqlite:///{folder / 'radassist.sqlite3'}"})
    settings = settings.model_copy(update={
        "prior_sources": tuple(sources(kind, http, dicom)),
        "priors": PriorsSettings(time_limit_seconds=300, max_instances=10_000, rules=(rule,)),
    })
    upgrade(settings)
    return settings


def stage(folder: Path, current: list[pydicom.Dataset], rule: PriorRule, kind: str, http: int,
          dicom: int) -> tuple[float, int]:
    settings = _node(folder, rule, kind, http, dicom)
    sessions = make_sessionmaker(settings)
    store = InstanceStore(settings.storage.instances_dir)
    for ds in current:  # the current study, received as the listener records it
        data = part10(ds)
        header = parse_header(data, str(ds.file_meta.TransferSyntaxUID))
        stored = store.write(data, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
        with sessions() as session:
            record_instance(session, header, stored, calling_ae="MODALITY", called_ae=OUR_AE, now=utcnow())
            session.commit()
    with sessions() as session:
        [job_id] = claim_all(session, settings, now=utcnow() + dt.timedelta(hours=1))
        session.commit()
    started = time.perf_counter()
    with sessions() as session:
        search = start_search(session, job_id, utcnow())
        session.commit()
    assert search is not None
    outcome = search_priors(settings, sessions, search)
    with sessions() as session:
        record_search(session, search, outcome.result, profile=outcome.profile, study_ids=outcome.study_ids,
                      now=utcnow())
        session.commit()
    elapsed = time.perf_counter() - started
    sessions.kw["bind"].dispose()
    if not outcome.result.available:
        raise SystemExit(f"stage {kind}: no prior ({outcome.result.reason_code})")
    return elapsed, sum(len(p.sop_instance_uids) for p in outcome.result.priors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct-slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-prefetch-") as tmp:
        work = Path(tmp)
        processes, http, dicom = start(work)
        try:
            current = make_cxr_study(dt.datetime(2024, 3, 14, 9, 30))
            cxr = make_cxr_study(dt.datetime(2023, 1, 10, 14, 0))
            ct = ct_prior(args.ct_slices)
            with httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=60) as client:
                for ds in [*current, *cxr, *ct]:
                    client.post("/instances", content=part10(ds)).raise_for_status()
            cases = {"cxr (frontal)": PriorRule(views=("PA",)),
                     f"ct ({args.ct_slices} x 512x512)": PriorRule(modalities=("CT",))}
            print(f"{'case':24} {'source':9} {'library s':>10} {'stage s':>9} {'images':>7} {'stage/library':>14}")
            run = 0
            for name, rule in cases.items():
                for kind in ("get", "orthanc"):
                    alone = [library(current, rule, kind, http, dicom) for _ in range(args.repeat)]
                    staged = []
                    for _ in range(args.repeat):
                        run += 1
                        staged.append(stage(work / f"node-{run}", current, rule, kind, http, dicom))
                    a, s = statistics.median(r[0] for r in alone), statistics.median(r[0] for r in staged)
                    print(f"{name:24} {kind:9} {a:10.3f} {s:9.3f} {staged[0][1]:7d} {s / a:14.2f}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
