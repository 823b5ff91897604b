"""fewer pages per instance: the listener's transaction writes three B-tree pages less

Every B-tree a transaction changes costs SQLite one page (4 KiB) in the WAL, which the commit's
flush writes to disk.  The common instance's transaction changed fifteen; two tables cost three
of those for no reader's benefit:

- ``ix_events_job_id`` held an entry for every event, the listener's event for each received
  instance (no job) included, though lookups by job never ask for NULL: it now holds the events
  of a job only;
- ``unsynced_instances`` (0014) was a rowid table with an index on the instance and one on the
  writer's batch: it is now keyed by ``(writer, batch, instance_id)`` and, on SQLite, is that
  key's B-tree alone (``WITHOUT ROWID``).  Its rows are the last batch of each listener, kept.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "writer, batch, instance_id, path, crc32"
_OF_A_JOB = sa.text("job_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_events_job_id", table_name="events")
    op.create_index("ix_events_job_id", "events", ["job_id"], sqlite_where=_OF_A_JOB, postgresql_where=_OF_A_JOB)
    op.drop_index("ix_unsynced_instances_writer_batch", table_name="unsynced_instances")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a table's key: a new table takes the rows over.
        _recreate_unsynced(["writer", "batch", "instance_id"], without_rowid=True)
    else:
        op.drop_constraint("pk_unsynced_instances", "unsynced_instances", type_="primary")
        op.create_primary_key("pk_unsynced_instances", "unsynced_instances", ["writer", "batch", "instance_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _recreate_unsynced(["instance_id"], without_rowid=False)
    else:
        op.drop_constraint("pk_unsynced_instances", "unsynced_instances", type_="primary")
        op.create_primary_key("pk_unsynced_instances", "unsynced_instances", ["instance_id"])
    op.create_index("ix_unsynced_instances_writer_batch", "unsynced_instances", ["writer", "batch"])
    op.drop_index("ix_events_job_id", table_name="events")
    op.create_index("ix_events_job_id", "events", ["job_id"])


def _recreate_unsynced(key: list[str], *, without_rowid: bool) -> None:
    op.rename_table("unsynced_instances", "unsynced_instances_0014")
    op.create_table(
        "unsynced_instances",
        sa.Column("writer", sa.String(length=32), nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("crc32", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], name=op.f("fk_unsynced_instances_instance_id_instances"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_unsynced_instances")),
        sqlite_with_rowid=not without_rowid,
    )
    op.execute(f"INSERT INTO unsynced_instances ({_COLUMNS}) SELECT {_COLUMNS} FROM unsynced_instances_0014")
    op.drop_table("unsynced_instances_0014")
