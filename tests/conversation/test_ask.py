"""Asking: what is stored and audited, and every refusal, on both databases (no model needed)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from radassist.config import Settings
from radassist.config.conversation import ConversationSettings
from radassist.conversation.ask import ask, clean_question
from radassist.conversation.turns import expire_stale
from radassist.db.engine import make_sessionmaker
from radassist.db.tables import AuditEntry, ConversationTurn, Draft, Job, Study
from radassist.states import JobState, StudyState, TurnState

NOW = dt.datetime(2026, 12, 8, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(migrated_settings: Settings) -> Iterator[sessionmaker[Session]]:
    made = make_sessionmaker(migrated_settings)
    yield made
    made.kw["bind"].dispose()


def add_drafted_study(session: Session, *, with_draft: bool = True) -> tuple[uuid.UUID, uuid.UUID | None]:
    study = Study(study_instance_uid=generate_uid(), state=StudyState.COMPLETE)
    session.add(study)
    session.flush()
    job = Job(study_id=study.id, state=JobState.DONE, model_name="m", created_at=NOW - dt.timedelta(hours=1))
    session.add(job)
    session.flush()
    draft_id = None
    if with_draft:
        draft = Draft(job_id=job.id, findings="f", impression="i", raw_text="Findings: f Impression: i",
                      model_name="m", prompt="p", prompt_version="2")
        session.add(draft)
        session.flush()
        draft_id = draft.id
    session.commit()
    return study.id, draft_id


def test_a_question_is_stored_pending_and_audited(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        study_id, draft_id = add_drafted_study(session)
    with sessions.begin() as session:
        asked = ask(session, ConversationSettings(), study_id, "rad", "Is there a pneumothorax?", NOW)
    assert asked.ok and asked.status == 202 and asked.dispatch[0].task == "radassist.answer_question"
    assert asked.dispatch[0].queue == "gpu" and asked.dispatch[0].args == (str(asked.turn_id),)
    with sessions() as session:
        turn = session.get(ConversationTurn, asked.turn_id)
        assert turn is not None and turn.state is TurnState.PENDING and turn.number == 1
        assert turn.draft_id == draft_id and turn.user_name == "rad" and turn.question == "Is there a pneumothorax?"
        entry = session.scalars(select(AuditEntry)).one()
        assert (entry.user_name, entry.action, entry.target, entry.outcome) == (
            "rad", "conversation.ask", str(study_id), "done")
        assert entry.detail == {"turn": str(asked.turn_id), "number": 1, "question": "Is there a pneumothorax?"}


def test_refusals_store_nothing_but_the_audit_of_the_refusal(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        study_id, _ = add_drafted_study(session)
        undrafted, _ = add_drafted_study(session, with_draft=False)
    cases = [
        (ConversationSettings(enabled=False), study_id, 409, "conversation.disabled"),
        (ConversationSettings(), undrafted, 409, "conversation.no_draft"),
    ]
    for settings, target, status, code in cases:
        with sessions.begin() as session:
            asked = ask(session, settings, target, "rad", "Anything?", NOW)
        assert (asked.status, asked.code, asked.turn_id) == (status, code, None)
    with sessions.begin() as session:
        assert ask(session, ConversationSettings(), uuid.uuid4(), "rad", "Anything?", NOW).status == 404
    with sessions() as session:
        assert session.scalars(select(ConversationTurn)).all() == []
        refused = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(a.outcome, a.detail) for a in refused] == [
            ("refused", {"reason": "conversation.disabled"}), ("refused", {"reason": "conversation.no_draft"})]


def test_one_question_at_a_time_and_at_most_max_turns(sessions: sessionmaker[Session]) -> None:
    settings = ConversationSettings(max_turns=2)
    with sessions() as session:
        study_id, _ = add_drafted_study(session)

    def asking(user: str = "rad", at: dt.datetime = NOW) -> tuple[int, str]:
        with sessions.begin() as session:
            asked = ask(session, settings, study_id, user, "Anything?", at)
        return asked.status, asked.code

    assert asking() == (202, "conversation.asked")
    assert asking() == (409, "conversation.busy")  # the first is still waiting for its answer
    assert asking("other") == (202, "conversation.asked")  # another radiologist has a conversation of their own
    with sessions.begin() as session:
        session.execute(ConversationTurn.__table__.update().values(state=TurnState.ANSWERED))
    assert asking() == (202, "conversation.asked")
    with sessions.begin() as session:
        session.execute(ConversationTurn.__table__.update().values(state=TurnState.ANSWERED))
    assert asking() == (409, "conversation.too_many_turns")
    with sessions() as session:
        numbers = session.scalars(select(ConversationTurn.number).where(ConversationTurn.user_name == "rad")
                                  .order_by(ConversationTurn.number)).all()
        assert numbers == [1, 2]


def test_questions_per_hour_per_user(sessions: sessionmaker[Session]) -> None:
    settings = ConversationSettings(questions_per_hour=2)
    with sessions() as session:
        studies = [add_drafted_study(session)[0] for _ in range(3)]
    statuses = []
    for index, study_id in enumerate(studies):
        with sessions.begin() as session:
            statuses.append(ask(session, settings, study_id, "rad", "Anything?", NOW + dt.timedelta(minutes=index)).status)
    assert statuses == [202, 202, 429]
    with sessions.begin() as session:  # an hour after the first, one question is free again
        later = ask(session, settings, studies[2], "rad", "Anything?", NOW + dt.timedelta(minutes=61))
    assert later.status == 202


def test_a_question_nobody_took_is_given_up_and_another_may_be_asked(sessions: sessionmaker[Session]) -> None:
    settings = ConversationSettings(wait_limit_s=60, answer_time_limit_s=30)
    with sessions() as session:
        study_id, _ = add_drafted_study(session)
    with sessions.begin() as session:
        first = ask(session, settings, study_id, "rad", "Anything?", NOW)
    with sessions.begin() as session:
        assert expire_stale(session, settings, NOW + dt.timedelta(seconds=59)) == 0
    with sessions.begin() as session:
        again = ask(session, settings, study_id, "rad", "Anything now?", NOW + dt.timedelta(seconds=61))
    assert again.status == 202
    with sessions() as session:
        turn = session.get(ConversationTurn, first.turn_id)
        assert turn is not None and turn.state is TurnState.FAILED and turn.error_code == "conversation.expired"
    # An answer whose worker went silent past the time limit (and slack) is given up too.
    with sessions.begin() as session:
        session.execute(ConversationTurn.__table__.update().where(ConversationTurn.id == again.turn_id)
                        .values(state=TurnState.ANSWERING, started_at=NOW))
    with sessions.begin() as session:
        assert expire_stale(session, settings, NOW + dt.timedelta(seconds=89)) == 0
        assert expire_stale(session, settings, NOW + dt.timedelta(seconds=91)) == 1
    with sessions() as session:
        turn = session.get(ConversationTurn, again.turn_id)
        assert turn is not None and turn.error_code == "conversation.worker_lost"


@pytest.mark.parametrize(("text", "problem"), [
    ("   ", "empty"), ("x" * 2001, "longer than 2000"), ("nul\x00inside", "control"), ("bell\x07", "control"),
])
def test_bad_questions_are_refused_by_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        clean_question(text, 2000)


def test_a_question_keeps_its_lines_without_outer_blanks() -> None:
    assert clean_question("  Which side?\r\nAnd how large?\t\n", 2000) == "Which side?\nAnd how large?"
