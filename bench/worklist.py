"""Worklist benchmark: the JSON endpoint with 100,000 studies in PostgreSQL.

    .venv/bin/python bench/worklist.py [--studies N] [--requests N] [--pg-url URL] [--keep]

Creates a throwaway database, migrates it, bulk-loads N studies (COPY) with their jobs and
deliveries (90 % done, 5 % failed, 2 % delivering, 1 % queued, 2 % still receiving; 5 modalities,
20 calling AE titles, 30 days), then times ``GET /api/studies`` in-process (FastAPI TestClient,
authenticated by API token, so the figures include auth, query, serialisation) for the first page
and for filtered pages, and prints p50/p95/max per case.  Target: p95 < 100 ms.  The database is
dropped afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG_ADMIN_URL = os.environ.get("RADASSIST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MODALITIES = ("CR", "CT", "MR", "DX", "MG")
AE_TITLES = tuple(f"MOD{i:02d}" for i in range(20))


def _accession_hash(n: int) -> str:
    return hashlib.sha256(f"ACC{n:08d}".encode()).hexdigest()[:16]


def load(url: str, studies: int, seed: int = 7) -> None:
    """COPY the studies, jobs and deliveries straight into PostgreSQL (psycopg3 ``copy``)."""
    import psycopg

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        jobs: list[tuple[object, ...]] = []
        deliveries: list[tuple[object, ...]] = []
        with cur.copy(
            "COPY studies (id, study_instance_uid, accession_number_hash, modality, study_description, "
            "calling_ae_title, called_ae_title, state, instance_count, first_received_at, last_received_at, "
            "completed_at, patient_age, patient_sex) FROM STDIN"
        ) as copy:
            for n in range(studies):
                sid = uuid.uuid4()
                last = now - dt.timedelta(seconds=rng.uniform(0, 30 * 86400))
                first = last - dt.timedelta(seconds=rng.uniform(0, 60))
                roll = rng.random()
                receiving = roll < 0.02
                modality = rng.choice(MODALITIES)
                copy.write_row((
                    sid, f"1.2.826.0.1.3680043.8.498.{n}", _accession_hash(n), modality, f"{modality} STUDY",
                    rng.choice(AE_TITLES), "RADASSIST", "receiving" if receiving else "complete",
                    rng.randint(1, 300), first, last, None if receiving else last + dt.timedelta(seconds=10),
                    f"{rng.randint(1, 99):03d}Y", rng.choice("FM"),
                ))
                if receiving:
                    continue
                state = ("failed" if roll < 0.07 else "delivering" if roll < 0.09 else
                         "queued" if roll < 0.10 else "done")
                jid = uuid.uuid4()
                created = last + dt.timedelta(seconds=10)
                started = created + dt.timedelta(seconds=1) if state != "queued" else None
                drafted = started + dt.timedelta(seconds=30) if started else None
                finished = drafted + dt.timedelta(seconds=2) if state in ("done", "failed") and drafted else None
                jobs.append((jid, sid, state, "google/medgemma-1.5-4b-it", 1,
                             "pacs.unreachable" if state == "failed" else None, created, started, drafted, finished))
                if drafted is not None:
                    sr_state = "failed" if state == "failed" else "pending" if state == "delivering" else "delivered"
                    deliveries.append((uuid.uuid4(), jid, "sr", "pacs", sr_state, 1, drafted,
                                       "pacs.unreachable" if sr_state == "failed" else None, drafted, drafted))
                    deliveries.append((uuid.uuid4(), jid, "hl7", "ris", "delivered", 1, drafted, None, drafted,
                                        drafted))
        with cur.copy(
            "COPY jobs (id, study_id, state, model_name, attempts, error_code, created_at, started_at, drafted_at, "
            "finished_at) FROM STDIN"
        ) as copy:
            for row in jobs:
                copy.write_row(row)
        with cur.copy(
            "COPY deliveries (id, job_id, channel, destination, state, attempts, next_attempt_at, last_error_code, "
            "created_at, first_attempt_at) FROM STDIN"
        ) as copy:
            for row in deliveries:
                copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")
    print(f"loaded {studies:,} studies, {len(jobs):,} jobs, {len(deliveries):,} deliveries")


def measure(client, path: str, params: dict[str, str], requests: int, headers: dict[str, str]) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(3):  # warm-up (plan cache, connection pool)
        assert client.get(path, params=params, headers=headers).status_code == 200
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="an admin URL; a throwaway database is made beside it")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is printed)")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from radassist.config import load_settings
    from radassist.db.migrate import upgrade
    from radassist.web.app import create_app
    from tests.web.support import add_user, bearer

    name = f"radassist_bench_{uuid.uuid4().hex[:10]}"
    url = args.pg_url.rsplit("/", 1)[0] + "/" + name
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="radassist-bench-"))
    try:
        settings = load_settings(environ={"RADASSIST_DATABASE_URL": url, "RADASSIST_STORAGE_PATH": str(data)})
        upgrade(settings)
        started = time.perf_counter()
        load(url, args.studies)
        print(f"load + analyze: {time.perf_counter() - started:.1f} s")
        token = add_user(settings, "bench", "viewer")
        cases = {
            "first page (50, no filter)": {"limit": "50"},
            "page 5 (offset 200)": {"limit": "50", "offset": "200"},
            "state=failed": {"state": "failed", "limit": "50"},
            "state=done (total capped at 10,000)": {"state": "done", "limit": "50"},
            "modality=CT & ae=MOD07": {"modality": "CT", "ae": "MOD07", "limit": "50"},
            "date range (one day, 8 days ago)": {
                "from": (dt.date.today() - dt.timedelta(days=8)).isoformat(),
                "to": (dt.date.today() - dt.timedelta(days=8)).isoformat(), "limit": "50"},
            "accession (exact, hashed)": {"accession": "ACC00004242"},
        }
        print(f"\nGET /api/studies, {args.requests} requests each, in-process (TestClient), {args.studies:,} studies")
        with TestClient(create_app(settings)) as client:
            for mode, ttl in (("every request counts the total afresh (cold)", 0.0),
                              ("totals reused for 5 s (the auto-refreshing page's steady state)", 5.0)):
                client.app.state.count_cache.ttl_s = ttl  # type: ignore[attr-defined]
                client.app.state.count_cache.clear()  # type: ignore[attr-defined]
                print(f"\n{mode}")
                print(f"{'case':<36} {'total':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
                for label, params in cases.items():
                    total = client.get("/api/studies", params=params, headers=bearer(token)).json()["total"]
                    times = measure(client, "/api/studies", params, args.requests, bearer(token))
                    p95 = statistics.quantiles(times, n=20)[-1]
                    print(f"{label:<36} {total:>7} {statistics.median(times):>8.1f} {p95:>8.1f} {max(times):>8.1f}"
                          f"{'' if p95 < 100 else '   (over the 100 ms target)'}")
        if args.keep:
            print(f"\ndatabase kept: {url}")
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        import shutil

        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
