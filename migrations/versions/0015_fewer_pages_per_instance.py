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

_OF_A_JOB = sa.text("job_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_events_job_id", table_name="events")
    op.create_index("ix_events_job_id", "events", ["job_id"], sqlite_where=_OF_A_JOB, postgresql_where=_OF_A_JOB)
    op.drop_index("ix_unsynced_instances_writer_batch", table_name="unsynced_instances")
    _rekey_unsynced(["writer", "batch", "instance_id"], sqlite_with_rowid=False)


def downgrade() -> None:
    _rekey_unsynced(["instance_id"], sqlite_with_rowid=True)
    op.create_index("ix_unsynced_instances_writer_batch", "unsynced_instances", ["writer", "batch"])
    op.drop_index("ix_events_job_id", table_name="events")
    op.create_index("ix_events_job_id", "events", ["job_id"])


def _rekey_unsynced(key: list[str], *, sqlite_with_rowid: bool) -> None:
    """SQLite cannot change a table's key: Alembic's batch mode moves the rows to a new table there,
    and alters the key in place on PostgreSQL."""
    with op.batch_alter_table("unsynced_instances", table_kwargs={"sqlite_with_rowid": sqlite_with_rowid}) as batch_op:
        batch_op.drop_constraint("pk_unsynced_instances", type_="primary")
        batch_op.create_primary_key("pk_unsynced_instances", key)
