"""One retention run: done studies past their time, then the oldest done ones while space is short."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.pipelines import all_pipelines
from radassist.read.rows import Freed
from radassist.retention.candidates import DoneStudy, done_studies, fetch
from radassist.retention.remove import remove_study
from radassist.store.instances import InstanceStore

logger = logging.getLogger(__name__)

BATCH = 50


class DiskUsage(NamedTuple):
    total: int
    free: int


@dataclass(frozen=True)
class RetentionRun:
    by_age: Freed
    to_make_room: Freed
    short_of_space: bool
    """Free space is still below the target and no done study is left to remove."""


def low_disk_threshold(settings: Settings, total_bytes: int) -> int:
    """The free space below which the listener refuses intake (``[storage] min_free_bytes`` /
    ``min_free_percent``, whichever is larger)."""
    storage = settings.storage
    return max(storage.min_free_bytes, int(total_bytes * storage.min_free_percent / 100))


def disk_usage(settings: Settings) -> DiskUsage | None:
    """Total and free bytes of the disk holding the instance store; None when it does not exist yet."""
    for folder in (settings.storage.instances_dir, settings.storage.path):
        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            continue
        return DiskUsage(usage.total, usage.free)
    return None


def run_retention(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: dt.datetime,
    usage: Callable[[], DiskUsage | None] | None = None,
) -> RetentionRun:
    """Remove the files of done studies whose time is up, then make room; returns what was freed."""
    measure = usage or (lambda: disk_usage(settings))
    instances = InstanceStore(settings.storage.instances_dir)
    by_age = Freed()
    pipelines = all_pipelines(settings)
    for pipeline in pipelines:
        hours = settings.retention.hours_for(pipeline.ae_title)
        if hours <= 0:
            continue
        others = [p.ae_title for p in pipelines if p.ae_title != pipeline.ae_title]
        query = done_studies(
            called_ae_titles=None if pipeline.is_default else [pipeline.ae_title],
            exclude_called_ae_titles=others if pipeline.is_default else (),
            done_before=now - dt.timedelta(hours=hours),
        )
        by_age += _remove_all(session_factory, instances, settings, functools.partial(fetch, query=query, limit=BATCH),
                              "age", now)
    to_make_room, short = Freed(), False
    if settings.retention.make_room:
        to_make_room, short = _make_room(session_factory, instances, settings, measure, now)
    if by_age.studies or to_make_room.studies:
        logger.info(
            "retention removed the files of %d studies past their time (%d bytes) and of %d to make room (%d bytes)",
            by_age.studies, by_age.bytes, to_make_room.studies, to_make_room.bytes,
        )
    return RetentionRun(by_age, to_make_room, short)


def _remove_all(
    session_factory: sessionmaker[Session],
    instances: InstanceStore,
    settings: Settings,
    batch: Callable[[Session], list[DoneStudy]],
    reason: str,
    now: dt.datetime,
    enough: Callable[[], bool] = lambda: False,
) -> Freed:
    """Remove the studies ``batch`` lists, batch after batch, until none is left or ``enough``."""
    freed, tried = Freed(), set()
    while not enough():
        with session_factory() as session:
            studies = [s for s in batch(session) if s.id not in tried]
        if not studies:
            break
        for study in studies:
            tried.add(study.id)
            removed = remove_study(session_factory, instances, settings.storage.outputs_dir, study.id,
                                   reason=reason, now=now)
            if removed is not None:
                freed += removed
            if enough():
                break
    return freed


def _make_room(
    session_factory: sessionmaker[Session],
    instances: InstanceStore,
    settings: Settings,
    measure: Callable[[], DiskUsage | None],
    now: dt.datetime,
) -> tuple[Freed, bool]:
    first = measure()
    if first is None:
        return Freed(), False
    target = low_disk_threshold(settings, first.total) + settings.retention.headroom_bytes

    def enough() -> bool:
        current = measure()
        return current is None or current.free >= target

    query = done_studies()
    freed = _remove_all(session_factory, instances, settings, functools.partial(fetch, query=query, limit=BATCH),
                        "low_disk", now, enough)
    short = not enough()
    if short:
        logger.warning("free disk space is below the low-disk threshold plus headroom and no delivered study is "
                       "left to remove: studies not yet delivered are kept")
    return freed, short
