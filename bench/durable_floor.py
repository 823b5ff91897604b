"""The floor under any listener that keeps the durability promise: the system calls alone, per instance.

    .venv/bin/python bench/durable_floor.py [--small N] [--ct N] [--folder DIR]

Before answering Success, the listener writes the instance to an unnamed file in its folder (a
temporary name where the file system has no ``O_TMPFILE``) and links it to its name, then makes
file, name and row durable in one of two ways (``[storage] sync``): ``each-file`` fsyncs the file
before the link and the folder after it (and the file again after the link on an ext file system
without a journal), then commits a row in SQLite (WAL, synchronous=FULL);
``filesystem`` (the default where Linux and a SQLite file allow it) commits the row without a sync
(synchronous=NORMAL, plus its ``unsynced_instances`` listing) and flushes everything with one
``syncfs``; and with ``filesystem``, an instance of at most ``[storage] in_commit_max_bytes`` is
durable in its commit (synchronous=FULL, its bytes in the listing), its file flushed in the
background (here: one ``syncfs`` per 100 instances, its time shared among them).  This times exactly those calls from a tight loop
(``radassist.store.instances.InstanceStore.write``, the listener's own, and one SQLite transaction),
with no DICOM, no parsing and no Python beyond that, for a small instance (1.3 kB) and a CT slice
(512 KiB), next to the same file written the way Orthanc writes it (create, write, ``fdatasync``,
close: its ``SyncStorageArea``, which makes neither the name nor its index durable) and the way dcmtk's
storescp writes it (create, write, close: no fsync).  Compare
the printed instances/s with storescp's in ``bench/ingest.py``: no implementation can go faster
than this floor on the same disk.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from radassist.store.filesystem_sync import FilesystemSync  # noqa: E402
from radassist.store.instances import InstanceStore  # noqa: E402 - the listener's own durable write

_BACKGROUND_FLUSH_EVERY = 100


def durable(folder: Path, payload: bytes, count: int, *, one_flush: bool = False, in_commit: bool = False) -> float:
    """Seconds per instance for the listener's durable write and one SQLite commit: file, fsync,
    link, folder fsync, commit (FULL); or with ``one_flush``: file, link, commit (NORMAL) with the
    listing, ``syncfs``; or with ``in_commit`` as well: file, link, commit (FULL) with the listing
    and its bytes, and one ``syncfs`` per :data:`_BACKGROUND_FLUSH_EVERY` instances."""
    way = "in-commit" if in_commit else "one-flush" if one_flush else "each-file"
    database = sqlite3.connect(folder / f"floor-{way}.sqlite3", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute(f"PRAGMA synchronous={'NORMAL' if one_flush and not in_commit else 'FULL'}")
    database.execute("CREATE TABLE instances (uid TEXT PRIMARY KEY, path TEXT, size INTEGER)")
    database.execute("CREATE TABLE unsynced (batch INTEGER, uid TEXT, crc32 INTEGER, data BLOB,"
                     " PRIMARY KEY (batch, uid)) WITHOUT ROWID")  # fmt: skip
    store = InstanceStore(folder / f"instances-{way}")
    store.write(b"warm-up", "1.2", "1.2.3", "1.2.3.0")  # the study's folders exist, as mid-study
    flush = FilesystemSync([folder]) if one_flush or in_commit else None
    flushed_before = 1
    started = time.perf_counter()
    for n in range(1, count + 1):
        stored = store.write(payload, "1.2", "1.2.3", f"1.2.3.{n}", sync=flush is None)
        database.execute("BEGIN")
        database.execute("INSERT INTO instances VALUES (?, ?, ?)", (f"1.2.3.{n}", stored.relpath, len(payload)))
        if flush is not None:
            database.execute("DELETE FROM unsynced WHERE batch < ?", (flushed_before,))
            database.execute("INSERT INTO unsynced VALUES (?, ?, ?, ?)",
                             (n, f"1.2.3.{n}", stored.crc32, payload if in_commit else None))  # fmt: skip
        database.execute("COMMIT")
        if flush is not None and (not in_commit or n % _BACKGROUND_FLUSH_EVERY == 0):
            flush.sync()
            flushed_before = n + 1
    elapsed = time.perf_counter() - started
    database.close()
    return elapsed / count


def plain_files(folder: Path, payload: bytes, count: int, *, fdatasync: bool = False) -> float:
    """Seconds per instance for create + write + close, as storescp does (no fsync, no database);
    with ``fdatasync`` before the close, as Orthanc does."""
    started = time.perf_counter()
    for n in range(count):
        name = f"{'sync' if fdatasync else 'scp'}-{n:06d}.dcm"
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, payload)
            if fdatasync:
                os.fdatasync(fd)
        finally:
            os.close(fd)
    return (time.perf_counter() - started) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--ct", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    print(f"{'instance':<10}{'bytes':>9}{'each-file ms':>13}{'inst/s':>9}{'one flush ms':>13}{'inst/s':>9}"
          f"{'in commit ms':>13}{'inst/s':>9}{'fdatasync ms':>13}{'inst/s':>9}{'no-fsync ms':>13}{'inst/s':>9}")
    for name, size, count in (("small", 1300, args.small), ("ct", 512 * 1024 + 1300, args.ct)):
        payload = os.urandom(size)
        with tempfile.TemporaryDirectory(prefix="radassist-floor-", dir=args.folder) as tmp:
            folder = Path(tmp)
            per_durable = durable(folder, payload, count)
            per_flush = durable(folder, payload, count, one_flush=True)
            per_commit = durable(folder, payload, count, one_flush=True, in_commit=True)
            per_orthanc = plain_files(folder, payload, count, fdatasync=True)
            per_plain = plain_files(folder, payload, count)
        print(f"{name:<10}{size:>9}{per_durable * 1000:>13.3f}{1 / per_durable:>9.0f}"
              f"{per_flush * 1000:>13.3f}{1 / per_flush:>9.0f}{per_commit * 1000:>13.3f}{1 / per_commit:>9.0f}"
              f"{per_orthanc * 1000:>13.3f}{1 / per_orthanc:>9.0f}"
              f"{per_plain * 1000:>13.3f}{1 / per_plain:>9.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
