"""Instances committed before their files were known durable, and the start-up check that finds the lost ones.

With one ``syncfs`` per group (:mod:`radassist.store.filesystem_sync`) the listener commits an
instance's rows before the flush that makes its file durable.  The Success waits for that flush, but
a power cut during it can leave a committed row whose file is missing or partial, on a disk whose
folders and WAL were flushed in any order.  So each such instance gets a row in
``unsynced_instances`` in the same transaction, with the CRC-32 of the bytes written and the batch
that wrote it; the writer's next transaction deletes the rows of its batches whose flush has
returned (:func:`confirm_sql`), so the table holds at most the last batch of each listener process.

:func:`check_unsynced` reads every listed file back.  One that is whole (same size, same CRC-32)
is kept; one that is missing or differs lost its bytes in a crash, and because its sender never got
a Success for it, it is forgotten: the instance row goes, the series' and the study's counts drop by
one, the file is removed and the study's timeline says so (``study:instance:lost``).  The sender's
re-send then stores it afresh.  The listener runs it before it serves with ``confirm=True`` (a whole
file's row is deleted: nothing is in flight yet); every other part runs it before it starts work with
``confirm=False`` (it removes what was lost, and leaves the listing of a file a running listener may
still be flushing).

A small instance may instead have been made durable in its own commit, its bytes listed with it
(``[storage] in_commit_max_bytes``, :mod:`dicom_node.background_flush`): its Success did not wait
for the file's flush, so its file is never forgotten.  One that is not whole is rewritten from the
listed bytes (``study:instance:restored``) and unlisted: durable again, by the same steps as an SR.
One that cannot be written now (a full disk) stays listed with its bytes for the next check.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from radassist.db.engine import write_turn
from radassist.db.tables import Instance, Series, Study, UnsyncedInstance
from radassist.events import EventTag, record_event
from radassist.identifiers import study_handle
from radassist.store.durable import write_durably
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)

INSERT_SQL = (
    "INSERT INTO unsynced_instances (instance_id, path, crc32, writer, batch, data) VALUES (?, ?, ?, ?, ?, ?)"
)
"""Listed in the transaction that records the instance (SQLite's cursor, :mod:`dicom_node.group_commit`)."""
_CHUNK = 1024 * 1024
_CRASH = "its file was not whole at start-up: lost in a crash before its flush"
_RESTORED = "its file was not whole at start-up (a crash before its flush): rewritten from the bytes of its commit"


def confirm_sql(writer: str, before_batch: int) -> tuple[str, tuple[str, int]]:
    """The statement that unlists ``writer``'s instances of batches before ``before_batch`` (their
    flush returned), with its parameters."""
    return "DELETE FROM unsynced_instances WHERE writer = ? AND batch < ?", (writer, before_batch)


@dataclass
class CheckReport:
    """What :func:`check_unsynced` found."""

    kept: int = 0
    lost: list[uuid.UUID] = field(default_factory=list)
    """Instance ids forgotten because their file did not survive."""
    restored: list[uuid.UUID] = field(default_factory=list)
    """Instance ids whose file did not survive and was rewritten from the bytes listed with it."""
    unrestored: list[uuid.UUID] = field(default_factory=list)
    """Instance ids whose file did not survive and could not be rewritten now (a full disk, say):
    left listed with their bytes for the next check, never undone."""


def check_unsynced(session_factory: sessionmaker[Session], store: InstanceStore, *, confirm: bool) -> CheckReport:
    """Read back every listed file; forget the instances whose file is missing or differs.

    ``confirm``: also unlist the whole ones (only where no flush can be in flight: the listener
    before it serves)."""
    report = CheckReport()
    with session_factory() as session:
        listed = session.execute(
            select(UnsyncedInstance.instance_id, UnsyncedInstance.path, UnsyncedInstance.crc32,
                   Instance.path, Instance.size_bytes, UnsyncedInstance.data)
            .join(Instance, Instance.id == UnsyncedInstance.instance_id)
        ).all()  # fmt: skip
    # (Retention deletes a study's instance rows with its files: their listings go with them.)
    kept: list[uuid.UUID] = []
    for instance_id, listed_path, crc32, relpath, size_bytes, data in listed:
        # A path other than the listed one is a revision since, recorded the general way (its file
        # durable before its commit): nothing of this listing is left to check.
        if listed_path != relpath or _whole(store, relpath, size_bytes, crc32):
            kept.append(instance_id)
        elif data is not None and zlib.crc32(data) & 0xFFFFFFFF == crc32:
            if _restore(store, relpath, data):
                report.restored.append(instance_id)
                _note_restored(session_factory, instance_id)
            else:
                report.unrestored.append(instance_id)
        elif forget(session_factory, store, instance_id, reason=_CRASH):
            report.lost.append(instance_id)
    report.kept = len(kept)
    if confirm and kept:
        _unlist(session_factory, kept)
    if report.restored:  # durable now, whoever runs the check
        _unlist(session_factory, report.restored)
        logger.warning(
            "start-up check: %d instances answered Success before their file's flush lost the file in a "
            "crash; rewritten from the bytes kept with their rows", len(report.restored),
        )  # fmt: skip
    if report.lost:
        logger.warning(
            "start-up check: %d of %d instances committed before their flush lost their file in a crash "
            "and were undone (never answered Success: their senders re-send them)",
            len(report.lost), len(listed),
        )  # fmt: skip
    if report.kept:
        logger.info("start-up check: %d instances committed before their last flush are whole", report.kept)
    return report


def _whole(store: InstanceStore, relpath: str, size_bytes: int, crc32: int) -> bool:
    try:
        path = store.path(relpath)
        if path.stat().st_size != size_bytes:
            return False
        return _file_crc32(path) == crc32
    except (OSError, ValueError):
        return False


def _restore(store: InstanceStore, relpath: str, data: bytes) -> bool:
    """Rewrite a lost file from its listed bytes, durably; False when it cannot be written now."""
    try:
        write_durably(store.path(relpath), data)
    except (OSError, ValueError) as exc:
        logger.error("could not rewrite a lost instance file from its listed bytes (%s): it stays listed "
                     "for the next start-up check", type(exc).__name__)
        return False
    return True


def _note_restored(session_factory: sessionmaker[Session], instance_id: uuid.UUID) -> None:
    with write_turn(session_factory), session_factory() as session:
        instance = session.get(Instance, instance_id)
        if instance is not None:
            record_event(
                session, EventTag.INSTANCE_RESTORED, study_id=instance.study_id,
                instance_id=str(instance_id), reason=_RESTORED,
            )  # fmt: skip
            session.commit()


def _file_crc32(path: Path) -> int:
    value = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            value = zlib.crc32(chunk, value)
    return value & 0xFFFFFFFF


def _unlist(session_factory: sessionmaker[Session], instance_ids: list[uuid.UUID]) -> None:
    with write_turn(session_factory), session_factory() as session:
        session.execute(delete(UnsyncedInstance).where(UnsyncedInstance.instance_id.in_(instance_ids)))
        session.commit()


def forget(session_factory: sessionmaker[Session], store: InstanceStore, instance_id: uuid.UUID, *, reason: str) -> bool:
    """Undo a recorded instance that was never answered Success: its rows, its counts, its file; a
    ``study:instance:lost`` event with ``reason``.  False when it was gone already (another part
    did it first); a database error is logged, and the listing stays for the start-up check."""
    try:
        return _forget(session_factory, store, instance_id, reason)
    except Exception as exc:  # noqa: BLE001 - the listing outlives this: checked at the next start
        logger.error("could not undo an instance whose file is not known durable (%s)", type(exc).__name__)
        return False


def _forget(session_factory: sessionmaker[Session], store: InstanceStore, instance_id: uuid.UUID, reason: str) -> bool:
    with write_turn(session_factory), session_factory() as session:
        instance = session.get(Instance, instance_id)
        if instance is None:
            return False
        study = session.get(Study, instance.study_id)
        session.execute(
            update(Series).where(Series.id == instance.series_id).values(instance_count=Series.instance_count - 1)
        )
        session.execute(
            update(Study).where(Study.id == instance.study_id).values(instance_count=Study.instance_count - 1)
        )
        record_event(
            session, EventTag.INSTANCE_LOST, study_id=instance.study_id,
            instance_id=str(instance_id), reason=reason,
        )  # fmt: skip
        relpath = instance.path
        session.execute(delete(UnsyncedInstance).where(UnsyncedInstance.instance_id == instance_id))
        session.delete(instance)
        session.commit()
    logger.warning(
        "an instance of study %s was undone (%s); it was never answered Success, so its sender re-sends it",
        study_handle(study.study_instance_uid if study is not None else None), reason,
    )  # fmt: skip
    try:
        store.remove(relpath)
    except (OSError, ValueError) as exc:
        logger.warning("could not remove the file of a forgotten instance (%s)", type(exc).__name__)
    return True


__all__ = ["INSERT_SQL", "CheckReport", "check_unsynced", "confirm_sql", "forget"]
