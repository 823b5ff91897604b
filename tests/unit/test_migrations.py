"""The migrations build exactly the tables the code declares, and can be walked back down."""

from __future__ import annotations

import datetime as dt
import uuid

from alembic import command
from sqlalchemy import create_engine, inspect, text

from radassist.config import Settings
from radassist.db.migrate import alembic_config, check


def test_migrated_schema_matches_the_models(migrated_settings: Settings) -> None:
    check(migrated_settings)  # raises when autogenerate would find a difference


def test_downgrade_to_base_and_up_again(migrated_settings: Settings) -> None:
    config = alembic_config(migrated_settings.database_url)
    command.downgrade(config, "base")
    engine = create_engine(migrated_settings.database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    command.upgrade(config, "head")
    check(migrated_settings)


def test_0015_keeps_what_is_listed_unsynced(migrated_settings: Settings) -> None:
    """0015 re-keys ``unsynced_instances``: a listing waiting for the start-up check (a crash's
    leftover) must come through the upgrade and the downgrade unchanged."""
    config = alembic_config(migrated_settings.database_url)
    command.downgrade(config, "0014")
    engine = create_engine(migrated_settings.database_url)
    study, series, instance = (uuid.uuid4().hex for _ in range(3))
    listing = {"instance_id": instance, "path": "ab/cd/ef.dcm", "crc32": 2**32 - 1, "writer": "0123abcd", "batch": 7}
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO studies (id, study_instance_uid, state, instance_count, first_received_at,"
                " last_received_at) VALUES (:id, '1.2.3', 'receiving', 1, :at, :at)"
            ), {"id": study, "at": dt.datetime(2026, 12, 7)})  # fmt: skip
            connection.execute(text(
                "INSERT INTO series (id, study_id, series_instance_uid, instance_count) VALUES (:id, :study, '1.2.3.4', 1)"
            ), {"id": series, "study": study})  # fmt: skip
            connection.execute(text(
                "INSERT INTO instances (id, series_id, study_id, sop_instance_uid, sop_class_uid, transfer_syntax_uid,"
                " path, size_bytes, received_at) VALUES (:id, :series, :study, '1.2.3.4.5', '1.2', '1.2.840.10008.1.2.1',"
                " 'ab/cd/ef.dcm', 12, :at)"
            ), {"id": instance, "series": series, "study": study, "at": dt.datetime(2026, 12, 7)})  # fmt: skip
            connection.execute(text(
                "INSERT INTO unsynced_instances (instance_id, path, crc32, writer, batch)"
                " VALUES (:instance_id, :path, :crc32, :writer, :batch)"
            ), listing)  # fmt: skip
        for revision in ("head", "0014", "head"):
            (command.upgrade if revision == "head" else command.downgrade)(config, revision)
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT instance_id, path, crc32, writer, batch FROM unsynced_instances")
                ).mappings().all()  # fmt: skip
            assert [{**row, "instance_id": uuid.UUID(str(row["instance_id"])).hex} for row in rows] == [listing]
    finally:
        engine.dispose()
    check(migrated_settings)


def test_0019_starts_each_known_workers_run_at_its_start(migrated_settings: Settings) -> None:
    """A worker row written before 0019 gets ``answering_since`` = its start, so the sweep's check of
    an unbroken run (:func:`radassist.presence.silence.database_answered`) reads no NULL."""
    config = alembic_config(migrated_settings.database_url)
    command.downgrade(config, "0018")
    engine = create_engine(migrated_settings.database_url)
    started = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO worker_presence (name, queues, pid, started_at, seen_at)"
                " VALUES ('gpu-0@host', 'gpu', 1, :started, :seen)"
            ), {"started": started, "seen": started + dt.timedelta(minutes=5)})  # fmt: skip
        command.upgrade(config, "head")
        with engine.connect() as connection:
            same = connection.execute(text("SELECT answering_since = started_at FROM worker_presence")).scalar_one()
        assert same in (True, 1)
    finally:
        engine.dispose()
    check(migrated_settings)
