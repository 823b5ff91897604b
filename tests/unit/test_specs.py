"""The generated documents under docs/ are what the code renders today."""

from __future__ import annotations

from radassist.specs import DOCUMENTS, drifted, rendered
from tests.conftest import REPO


def test_committed_documents_match_the_code() -> None:
    assert drifted(REPO) == [], "run `radassist docs write` and commit docs/"


def test_each_document_names_its_subject() -> None:
    texts = rendered()
    assert set(texts) == set(DOCUMENTS)
    assert all(text.startswith("# ") for text in texts.values())
