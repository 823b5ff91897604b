"""Fixtures for asking the study: a scripted tiny model, a study drafted by the real draft task (so its
pictures are kept), and questions stored as the web app stores them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.conversation.ask import Asked, ask
from radassist.db.base import utcnow
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Draft, Job
from radassist.models import loader
from radassist.states import JobState
from radassist_devtools.tiny_models import DEFAULT_TINY_REPORT, write_tiny_model
from tests.conftest import migrate
from tests.drafting.conftest import prepare
from tests.drafting.test_draft_task import add_study, cr_copy
from workers.base import reset_sessionmaker

ANSWER = DEFAULT_TINY_REPORT
"""What the scripted tiny model writes, to a drafting prompt and to every question alike."""


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("conversation-tiny") / "gemma3", arch="gemma3")


@dataclass
class Drafted:
    settings: Settings
    sessions: sessionmaker[Session]
    study_id: uuid.UUID
    job_id: uuid.UUID
    draft_id: uuid.UUID

    def ask(self, question: str, user: str = "rad") -> Asked:
        with self.sessions.begin() as session:
            return ask(session, self.settings.conversation, self.study_id, user, question, utcnow())


@pytest.fixture
def make_drafted(make_settings: Callable[..., Settings], database_url: str, tiny_gemma: Path, testdata: Path,
                 tmp_path: Path) -> Iterator[Callable[..., Drafted]]:
    """A chest radiograph drafted by the real draft task with the tiny model; settings overridable."""
    made: list[sessionmaker[Session]] = []

    def factory(**overrides: object) -> Drafted:
        from workers.app import make_celery
        from workers.tasks.draft import draft_study

        options: dict[str, object] = {"model_name": str(tiny_gemma), "model_local_files_only": "true",
                                      "model_image_size": "64", "model_device": "cpu", **overrides}
        settings = make_settings(database_url=database_url, **options)
        migrate(settings)
        reset_sessionmaker()
        loader.clear_cache()
        make_celery(settings)
        sessions = make_sessionmaker(settings)
        made.append(sessions)
        with sessions() as session:
            job = add_study(session, settings, [cr_copy(testdata, tmp_path / f"cr-{len(made)}")])
            job_id, study_id = job.id, job.study_id
        prepare(job_id)
        draft_study.apply(args=(str(job_id),)).get()
        with sessions() as session:
            state = session.scalar(select(Job.state).where(Job.id == job_id))
            assert state is JobState.DRAFTED, state
            draft_id = session.scalar(select(Draft.id).where(Draft.job_id == job_id))
            assert draft_id is not None
        return Drafted(settings, sessions, study_id, job_id, draft_id)

    yield factory
    for sessions in made:
        sessions.kw["bind"].dispose()
    reset_sessionmaker()
    loader.clear_cache()
