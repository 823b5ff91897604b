"""``[storage]``, ``[database]`` and ``[queue]``: where data, rows and messages live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from radassist.config.common import Section


class StorageSettings(Section):
    """Where received instances, produced SRs and HL7 messages are kept."""

    path: Path = Path("radassist-data")
    """The data folder. The embedded database and broker live here too unless their URLs are set."""
    min_free_bytes: int = Field(1_073_741_824, ge=0)
    """Below this much free disk space, new associations are refused (transient) and stores answered
    "out of resources" (0xA700). 0 disables the check."""
    min_free_percent: float = Field(0.0, ge=0, lt=100)
    """The same threshold as a share of the disk, in percent (both apply when both are set)."""

    @property
    def instances_dir(self) -> Path:
        return self.path / "instances"

    @property
    def outputs_dir(self) -> Path:
        return self.path / "outputs"


class DatabaseSettings(Section):
    """The database of studies, jobs, drafts and deliveries (SQLAlchemy URL)."""

    url: str = ""
    """Empty: SQLite in the data folder. Production: ``postgresql+psycopg://user@host/db``."""


class QueueSettings(Section):
    """The Celery broker that carries jobs to the workers."""

    broker_url: str = ""
    """Empty: Celery's SQLAlchemy transport on SQLite in the data folder. Production: ``amqp://...`` or ``redis://...``."""
    sweep_interval_seconds: float = Field(2.0, gt=0)
    """How often the scheduler looks for complete studies and for deliveries due a retry."""
    job_time_limit_seconds: int = Field(1800, ge=10)
    """Hard time limit of one drafting job; the soft limit is 90 % of it."""


