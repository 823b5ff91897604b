"""Safety benchmark: what the gate costs per draft, what naming a local model costs at load, and the
worklist's and review queue's answers with warnings on 100,000 studies in PostgreSQL.

    .venv/bin/python bench/safety.py [--studies N] [--requests N] [--weights-mb N] [--pg-url URL]

1. The consistency checks and the gate on a typical draft (µs per draft, in-process).
2. ``weights_revision``: hashing a local model folder's weights once per worker process (MB/s on
   a generated file of ``--weights-mb``, from the page cache).
3. ``bench/worklist.py``'s 100,000 studies, plus a draft for every drafted job (5 % with an anatomy
   warning, held for review; 5 % with a laterality warning): ``GET /api/studies`` filtered by
   ``state=needs_review`` and by ``warnings``, and ``GET /api/review``, p50/p95/max (target p95 < 100 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.worklist import PG_ADMIN_URL, load, measure  # noqa: E402

DRAFTS = """
INSERT INTO drafts (id, job_id, findings, impression, raw_text, model_name, prompt, prompt_version, generation,
                    created_at, profile, warnings, warning_checks)
SELECT gen_random_uuid(), j.id, 'The lungs are clear.', 'Normal.', '', j.model_name, '', '2', '{}'::jsonb,
       j.drafted_at, (ARRAY['cxr', 'ct_chest', 'ct_head', 'mammography', 'mr_brain'])[1 + abs(hashtext(j.id::text)) % 5],
       CASE abs(hashtext(j.id::text || 'w')) % 20
         WHEN 0 THEN '[{"check": "anatomy", "policy": "hold", "message": "m"}]'::jsonb
         WHEN 1 THEN '[{"check": "laterality", "policy": "annotate", "message": "m"}]'::jsonb
         ELSE '[]'::jsonb END,
       CASE abs(hashtext(j.id::text || 'w')) % 20 WHEN 0 THEN ' anatomy ' WHEN 1 THEN ' laterality ' ELSE '' END
FROM jobs j WHERE j.drafted_at IS NOT NULL
"""
HOLD = """
UPDATE jobs SET state = 'needs_review', finished_at = NULL
WHERE state = 'done' AND id IN (SELECT job_id FROM drafts WHERE warning_checks = ' anatomy ')
"""


def gate_cost(rounds: int = 20_000) -> None:
    from radassist.config.safety import SafetySettings
    from radassist.safety import StudyFacts, consistency_warnings, decide

    text = ("Findings: The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette "
            "is normal. Left hilar fullness.\nImpression: No acute cardiopulmonary abnormality.") * 2
    facts = StudyFacts(lateralities=("R",), modality="MG", sex="male", profile="mammography",
                       descriptions=("MAMMO SCREENING", None))
    settings = SafetySettings()
    started = time.perf_counter()
    for _ in range(rounds):
        decide(consistency_warnings(text, facts), settings)
    per = (time.perf_counter() - started) / rounds * 1e6
    print(f"checks + gate per draft ({len(text)} characters, 2 warnings): {per:.0f} µs")


def hash_cost(megabytes: int) -> None:
    from radassist.models.identity import _hash_files, weights_revision

    with tempfile.TemporaryDirectory() as folder:
        chunk = bytes(range(256)) * 4096
        with open(Path(folder) / "model.safetensors", "wb") as handle:
            for _ in range(megabytes):
                handle.write(chunk)
        _hash_files.cache_clear()
        started = time.perf_counter()
        revision = weights_revision(Path(folder))
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        weights_revision(Path(folder))
        print(f"weights_revision of {megabytes} MB: {seconds:.2f} s ({megabytes / seconds:.0f} MB/s), "
              f"{(time.perf_counter() - again) * 1000:.2f} ms when remembered -> {revision}")


def worklist_cost(pg_url: str, studies: int, requests: int) -> None:
    from fastapi.testclient import TestClient

    from radassist.config import load_settings
    from radassist.db.migrate import upgrade
    from radassist.web.app import create_app
    from tests.web.support import add_user, bearer

    name = f"radassist_bench_{uuid.uuid4().hex[:10]}"
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    data = Path(tempfile.mkdtemp(prefix="radassist-bench-"))
    try:
        settings = load_settings(environ={"RADASSIST_DATABASE_URL": url, "RADASSIST_STORAGE_PATH": str(data)})
        upgrade(settings)
        load(url, studies)
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            drafts = conn.execute(sa.text(DRAFTS)).rowcount
            held = conn.execute(sa.text(HOLD)).rowcount
            conn.execute(sa.text("VACUUM ANALYZE"))
        engine.dispose()
        print(f"{drafts:,} drafts, {held:,} held for review")
        token = add_user(settings, "bench", "viewer")
        cases = {
            "/api/studies first page (baseline)": ("/api/studies", {"limit": "50"}),
            "/api/studies state=failed (baseline)": ("/api/studies", {"state": "failed", "limit": "50"}),
            "/api/studies state=needs_review": ("/api/studies", {"state": "needs_review", "limit": "50"}),
            "/api/studies warnings=any": ("/api/studies", {"warnings": "any", "limit": "50"}),
            "/api/studies warnings=laterality": ("/api/studies", {"warnings": "laterality", "limit": "50"}),
            "/api/review (50)": ("/api/review", {}),
            "/api/review modality=MG": ("/api/review", {"modality": "MG"}),
        }
        print(f"\n{requests} requests each, in-process (TestClient), {studies:,} studies, totals counted afresh")
        print(f"{'case':<36} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        with TestClient(create_app(settings)) as client:
            client.app.state.count_cache.ttl_s = 0.0  # type: ignore[attr-defined]
            for label, (path, params) in cases.items():
                times = measure(client, path, params, requests, bearer(token))
                p95 = statistics.quantiles(times, n=20)[-1]
                print(f"{label:<36} {statistics.median(times):>8.1f} {p95:>8.1f} {max(times):>8.1f}"
                      f"{'' if p95 < 100 else '   (over the 100 ms target)'}")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--weights-mb", type=int, default=1024)
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="an admin URL; a throwaway database is made beside it")
    args = parser.parse_args()
    gate_cost()
    hash_cost(args.weights_mb)
    worklist_cost(args.pg_url, args.studies, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
