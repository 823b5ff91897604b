"""The priors stage against the real archive: the priors tests' private Orthanc, our database (SQLite
and PostgreSQL), the draft and build tasks with a scripted tiny model."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from radassist.completion.claim import claim_all
from radassist.config import PromptProfileSettings, Settings
from radassist.config.priors import PriorRule, PriorsSettings
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Report
from radassist.identifiers import accession_hash
from radassist.intake.header import parse_header
from radassist.intake.record import record_instance
from radassist.models import loader
from radassist.priors.fetch import SourceConfig
from radassist.store.instances import InstanceStore
from tests.conftest import migrate
from tests.priors.conftest import Archive, archive, closed_port, silent_port  # noqa: F401 -- fixtures
from tests.priors.factories import PRIOR_B_ACCESSION, part10
from workers.app import make_celery
from workers.base import reset_sessionmaker

SCRIPTED_REPORT = ("Findings: Compared with the prior study, the lungs remain clear. "
                   "Impression: No change since the prior study.")
RIS_REPORT_B = "FINAL REPORT B: stable small nodule, right upper lobe."
CXR = PriorRule(profile="cxr", views=("PA", "AP"), most_recent=2)


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from radassist_devtools.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("scripted") / "model", arch="gemma3", report=SCRIPTED_REPORT)


@dataclass
class Node:
    """Our side: settings with one prior source, the Celery app, and the database."""

    app: Celery
    settings: Settings
    sessions: sessionmaker[Session]

    def receive(self, datasets: list[pydicom.Dataset], called_ae: str = "RADASSIST") -> None:
        """Store and record instances as the listener does."""
        store = InstanceStore(self.settings.storage.instances_dir)
        for ds in datasets:
            data = part10(ds)
            header = parse_header(data, str(ds.file_meta.TransferSyntaxUID))
            stored = store.write(data, header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
            with self.sessions() as session:
                record_instance(session, header, stored, calling_ae="MODALITY", called_ae=called_ae, now=utcnow())
                session.commit()

    def complete(self) -> list[uuid.UUID]:
        """The sweep's completion, as if the studies had been quiet long enough."""
        with self.sessions() as session:
            job_ids = claim_all(session, self.settings, now=utcnow() + dt.timedelta(hours=1))
            session.commit()
        return job_ids


@pytest.fixture
def make_node(make_settings: Callable[..., Settings], scripted_model: Path) -> Iterator[Callable[..., Node]]:
    made: list[Node] = []

    def factory(source: SourceConfig, database_url: str, time_limit: float = 30.0,
                rules: tuple[PriorRule, ...] = (CXR,), profiles: tuple[PromptProfileSettings, ...] = (),
                **overrides: object) -> Node:
        base = make_settings(database_url=database_url, model_name=str(scripted_model), model_local_files_only="true",
                             model_image_size="64", model_max_new_tokens="64", **overrides)
        settings = base.model_copy(update={
            "prior_sources": (source,),
            "priors": PriorsSettings(time_limit_seconds=time_limit, rules=rules),
            "model": base.model.model_copy(update={"profiles": profiles}),
        })
        migrate(settings)
        reset_sessionmaker()
        loader.clear_cache()
        sessions = make_sessionmaker(settings)
        with sessions.begin() as session:  # the RIS's signed report of prior B (an inbound ORU)
            session.add(Report(accession_number_hash=accession_hash(PRIOR_B_ACCESSION), status="F",
                               text=RIS_REPORT_B, control_id=f"MSG-B-{uuid.uuid4().hex[:6]}"))
        node = Node(make_celery(settings), settings, sessions)
        made.append(node)
        return node

    yield factory
    for node in made:
        node.sessions.kw["bind"].dispose()
    reset_sessionmaker()
    loader.clear_cache()
