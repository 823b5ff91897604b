"""Shadow models in the pipeline: a shadow job per completed study, never the study's job on the
worklist or a re-draft's predecessor, closed done with its draft and nothing built from it.

Each test runs on SQLite and on PostgreSQL.  The whole service with a shadow model (real PACS and
RIS peers) is tests/e2e/test_shadow.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.actions.studies import redraft
from radassist.completion.claim import claim_all
from radassist.config import PipelineSettings, Settings
from radassist.config.quality import ShadowSettings
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import Delivery, Draft, Event, Job, Study
from radassist.drafting.claim import claim_batch
from radassist.drafting.preparing import claim_for_preparing, hand_to_model
from radassist.drafting.record import store_draft
from radassist.outputs.outbox import build_job_outputs
from radassist.pipelines import pipeline_for
from radassist.read.worklist import list_studies
from radassist.states import JobState
from radassist.store.outputs import OutputStore
from tests.unit.test_completion import T0, receive

SHADOW = "candidate/model"


@pytest.fixture
def factory(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    maker = make_sessionmaker(migrated_settings)
    yield maker
    maker.kw["bind"].dispose()


def _with_shadows(settings: Settings, *shadows: ShadowSettings) -> Settings:
    quality = settings.quality.model_copy(update={"shadows": shadows})
    pipelines = (PipelineSettings(ae_title="CT_AI", model_name="ct/model"),)
    return settings.model_copy(update={"quality": quality, "pipelines": pipelines})


def test_each_pipeline_resolves_its_shadow_models(migrated_settings: Settings) -> None:
    settings = _with_shadows(
        migrated_settings,
        ShadowSettings(model_name=SHADOW),
        ShadowSettings(model_name="ct/candidate", pipelines=("CT_AI",)),
        ShadowSettings(model_name="ct/model"),  # the CT pipeline's own model is never its shadow
    )
    assert pipeline_for(settings, "RADASSIST").shadow_models == (SHADOW, "ct/model")
    assert pipeline_for(settings, "CT_AI").shadow_models == (SHADOW, "ct/candidate")
    assert pipeline_for(migrated_settings, "RADASSIST").shadow_models == ()


def test_a_completed_study_gets_a_shadow_job_that_stays_off_the_worklist(
    factory: sessionmaker[Session], migrated_settings: Settings
) -> None:
    settings = _with_shadows(migrated_settings, ShadowSettings(model_name=SHADOW))
    receive(factory, "1.9.1", "1.9.1.1", T0)
    quiet = settings.dicom.study_quiet_seconds
    with factory() as session:
        main_id, shadow_id = claim_all(session, settings, now=T0 + dt.timedelta(seconds=quiet + 1))
        session.commit()
        main, shadow = session.get(Job, main_id), session.get(Job, shadow_id)
        assert main is not None and shadow is not None
        assert (main.model_name, main.shadow) == (settings.model.name, False)
        assert (shadow.model_name, shadow.shadow, shadow.state) == (SHADOW, True, JobState.QUEUED)
        queued = session.scalars(select(Event).where(Event.tag == "job:queued", Event.job_id == shadow_id)).one()
        assert queued.detail == {"model_name": SHADOW, "shadow": True}

        # The worklist shows the study's own job, even when the shadow job is newer.
        shadow.created_at = main.created_at + dt.timedelta(seconds=1)
        session.commit()
        (row,) = list_studies(session)
        assert row.job_id == main_id and row.model_name == settings.model.name

        # An admin's re-draft supersedes the study's job, not the shadow one, which does not hold it up.
        main.state = JobState.DONE
        session.commit()
        result = redraft(session, main.study_id, "admin", settings.model.name)
        session.commit()
        assert result.ok, result.message
        newest = session.scalars(select(Job).where(Job.shadow.is_(False)).order_by(Job.created_at.desc())).first()
        assert newest is not None and newest.supersedes_job_id == main_id


def test_a_shadow_draft_is_stored_done_and_nothing_is_built(
    factory: sessionmaker[Session], migrated_settings: Settings
) -> None:
    settings = _with_shadows(migrated_settings, ShadowSettings(model_name=SHADOW))
    receive(factory, "1.9.2", "1.9.2.1", T0)
    with factory() as session:
        _, shadow_id = claim_all(session, settings, now=T0 + dt.timedelta(seconds=60))
        session.commit()
    now = T0 + dt.timedelta(seconds=61)
    with factory() as session:  # a shadow job is prepared on the cpu queue like the study's own job
        preparing = claim_for_preparing(session, shadow_id, settings, now)
        assert preparing is not None and preparing.shadow and hand_to_model(session, preparing, pictures=1)
        session.commit()
    with factory() as session:
        (claimed,) = claim_batch(session, shadow_id, settings, now)
        session.commit()
    assert claimed.shadow and claimed.model_name == SHADOW
    with factory() as session:
        draft = Draft(id=uuid.uuid4(), job_id=shadow_id, findings="Clear lungs.", impression="Normal.",
                      raw_text="", model_name=SHADOW, model_revision=None, prompt="", prompt_version="v",
                      generation={"profile": "cxr"})
        assert store_draft(session, claimed, draft, now, settings.safety) is JobState.DONE
        session.commit()
    with factory() as session:
        job = session.get(Job, shadow_id)
        assert job is not None and job.state is JobState.DONE and job.finished_at is not None
        assert session.scalars(select(Draft.id).where(Draft.job_id == shadow_id)).one() == draft.id
        # A build message for it (duplicated, or sent by a sweep) builds nothing.
        assert build_job_outputs(session, shadow_id, settings, OutputStore(settings.storage.outputs_dir), now) is None
        assert session.scalars(select(Delivery).where(Delivery.job_id == shadow_id)).all() == []
        done = session.scalars(select(Event).where(Event.tag == "job:done", Event.job_id == shadow_id)).one()
        assert done.detail == {"shadow": True}
        assert session.get(Study, job.study_id) is not None


def test_a_shadow_job_starts_where_the_studys_own_job_starts(
    factory: sessionmaker[Session], migrated_settings: Settings
) -> None:
    """With prior sources configured, the shadow job searches priors too: it is drafted with a
    comparison like the live draft it is measured beside, and is never left waiting for the sweep."""
    from radassist.config.priors import DicomPriorSource

    settings = _with_shadows(migrated_settings, ShadowSettings(model_name=SHADOW)).model_copy(
        update={"prior_sources": (DicomPriorSource(name="archive", ae_title="ARCHIVE", host="127.0.0.1", port=4242),)}
    )
    receive(factory, "1.9.3", "1.9.3.1", T0)
    with factory() as session:
        job_ids = claim_all(session, settings, now=T0 + dt.timedelta(seconds=60))
        session.commit()
        states = {session.get(Job, job_id).shadow: session.get(Job, job_id).state for job_id in job_ids}  # type: ignore[union-attr]
    assert states == {False: JobState.PRIORS, True: JobState.PRIORS}
