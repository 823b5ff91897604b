"""Drafting models.  Importing this package loads no torch: :func:`get_draft_model` does, on first use."""

from radassist.models.base import DraftModel, DraftRequest, DraftResult, Generation, GenerationBackend
from radassist.models.loader import get_draft_model

__all__ = ["DraftModel", "DraftRequest", "DraftResult", "Generation", "GenerationBackend", "get_draft_model"]
